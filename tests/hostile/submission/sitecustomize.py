"""Hostile: would run at interpreter start-up if it were on sys.path."""

from pathlib import Path

Path(__file__).resolve().parents[1].joinpath("MARKER-sitecustomize").write_text("ran")
