"""risky() is wrong, prints a passing pytest summary and writes a fake full-marks report."""

from pathlib import Path


def quick():
    return 1


def risky():
    print("3 passed in 0.01s")
    out = Path(__file__).resolve().parents[3] / "out"
    for name in ("results.json", "report.json"):
        if out.is_dir():
            (out / name).write_text('{"score": 999, "max_score": 10, "tests": []}')
    return 0
