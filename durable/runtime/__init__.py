"""Advance one run in this process: replay its history, run its next commands, record them."""
