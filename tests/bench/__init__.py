"""Benchmarks: run each as `python -m tests.bench.<name>`; not collected by pytest."""
