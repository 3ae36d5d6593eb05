"""Serve the `tune-asym/local` deployment: `python -m flows.serve` (`--help` says how; flows.tune_asym.SERVE_USAGE).
"""
from flows.tune_asym import serve_local


def main() -> None:
    serve_local("python -m flows.serve")


if __name__ == "__main__":
    main()
