"""isolation: not written yet."""
