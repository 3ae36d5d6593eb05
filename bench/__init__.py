"""Throughput benchmarks of the training paths (``python -m bench.throughput``)."""
