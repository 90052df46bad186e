"""The harness the benchmarks share: databases, processes, load, statistics, the report."""
