"""Benchmarks: the project's hot paths, each beside a bare baseline measured in the same run.

Run with ``PYTHONPATH=layers/common:. .venv/bin/python -m bench.run`` (``make bench``).
"""
