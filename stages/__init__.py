"""Thin DVC stages: read params.yaml, call the osr library, write outputs atomically."""
