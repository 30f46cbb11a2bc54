"""hygiene: not written yet."""
