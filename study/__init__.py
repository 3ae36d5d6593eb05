"""The claims study: grid, claims, report and its documents (not the method library)."""
