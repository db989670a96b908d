"""Benchmarks, run from the top of the checkout: ``python -m benchmarks.rules`` and
``python -m benchmarks.collector`` (``make bench``; figures in docs/benchmarks.md)."""
