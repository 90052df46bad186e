"""The workflow language and its replay: pure Python, no database."""
