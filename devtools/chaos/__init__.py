"""The chaos run (DESIGN.md §4 under SIGKILL): the short one in tests/chaos/test_chaos.py, the
long one in bench/chaos.py."""
