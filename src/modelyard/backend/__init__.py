"""Backends: the one contract (base.py), its implementations, and the source snapshots that
both the SDK and the runner take and restore through it (snapshot.py)."""
