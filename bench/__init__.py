"""Benchmarks: scripts that measure sitrep and print a table (not part of the test suite)."""
