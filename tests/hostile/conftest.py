"""The hostile suite's fake kit and submission are data for the supervisor, never tests to collect here."""

collect_ignore = ["kit", "submission", "confined"]
