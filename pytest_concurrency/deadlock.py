"""deadlock: not written yet."""
