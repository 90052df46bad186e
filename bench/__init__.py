"""Benchmarks of oneclick: `make bench` (= `python bench/run_all.py`) writes bench/RESULTS.md."""
