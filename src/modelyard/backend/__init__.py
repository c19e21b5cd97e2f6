"""Backends: the one contract (base.py) and its implementations."""
