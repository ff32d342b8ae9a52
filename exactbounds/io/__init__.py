"""Readers and writers: the JSON network format, result JSON."""
