"""Benchmarks of pixery-widgets: ``make bench`` (``python -m benchmarks``).

Each ``bench_*.py`` module measures one promise of the issue against a baseline
run alongside it; ``_harness`` says how a benchmark is written.
"""
