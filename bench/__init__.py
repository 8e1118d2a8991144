"""Benchmarks that print numbers: `python -m bench` runs them all, `python -m bench.<name>` one."""
