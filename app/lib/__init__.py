"""Shared infrastructure: knows nothing about any domain."""
