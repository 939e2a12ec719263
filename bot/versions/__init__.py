"""Trained versions of a bot: the versions folder (store.py), the promotion gate (gate.py)."""
