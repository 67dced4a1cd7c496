"""Benchmarks that print figures (speed, memory, quality); never part of the test suite's
pass/fail."""
