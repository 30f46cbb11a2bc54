"""schedules: not written yet."""
