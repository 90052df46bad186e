"""Code the tests and the benchmarks share (the app never imports it)."""
