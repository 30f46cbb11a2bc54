"""Grading: points, the score table, the report formats, and ``pytest-concurrency grade``.

- ``model.py``: the grade as data (results, exercise lines, the grade book);
- ``plugin.py``: the pytest part (``points`` marker, score table, ``--grade-json``);
- ``manifest.py``: the tamper check's hashes of the exercise test files;
- ``formats.py``: every report format, and the one atomic file writer;
- ``supervisor.py``: ``pytest-concurrency grade``, each exercise in a supervised child;
- ``child.py``: the plugin inside each such child, reporting to the supervisor;
- ``cli.py``: the ``pytest-concurrency`` command line.
"""
