"""Peers that oneclick's benchmarks measure against in the same run (never imported by the app)."""
