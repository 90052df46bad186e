"""Benchmarks of oneclick: `make bench` (= `python bench/run_all.py`) reports to bench/runs/."""
