"""Benchmarks: each prints its figures next to a bare baseline served the same way (`python -m bench.<name>`)."""
