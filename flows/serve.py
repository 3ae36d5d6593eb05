"""Serve the `tune-asym/local` deployment (runs flow runs as local subprocesses, no work pool).

    prefect server start --host 127.0.0.1 --port 4200 --analytics-off     # another terminal
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m flows.serve
    prefect deployment run tune-asym/local -p n_trials=20 --watch
"""
import argparse

from flows.tune_asym import tune_asym


def main(prog: str = "python -m flows.serve") -> None:
    argparse.ArgumentParser(prog=prog, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    tune_asym.serve(name="local")


if __name__ == "__main__":
    main()
