"""The student's commands (``grading/student.py``, ``grading/watch.py``): list, next, hint,
reset, watch; on a small kit of their own (a git clone, as a student has), run for real.

``watch`` is driven in a real terminal, tmux: keys through send-keys, the screen
through capture-pane, polled until a generous deadline (never a sleep and hope).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kit import need_tools

CLI = [sys.executable, "-m", "pytest_concurrency"]

STUB = '''\
"""Exercise 01: add. Read README.md first."""


def add(a, b):
    raise NotImplementedError("add: write it (see exercises/01_add/README.md)")
'''
HALF = "def add(a, b):\n    return abs(a) + abs(b)\n"
RIGHT = "def add(a, b):\n    return a + b\n"
TESTS = '''\
import pytest
from pytest_concurrency import load_impl

adder = load_impl("adder")


@pytest.mark.points(2)
def test_add():
    assert adder.add(1, 2) == 3, "add(1, 2) should be 3"


@pytest.mark.hint(2)
def test_add_negative():
    got = adder.add(-1, -2)
    assert got == -3, f"add(-1, -2) gave {got}: signs matter"
'''
README = '''\
# 01 add

<details><summary>Hint 1</summary>

Use `+`.

</details>

<details><summary>Hint 2</summary>

Negative numbers are numbers too: do not take `abs()`.

</details>
'''
MUL_STUB = 'def mul(a, b):\n    raise NotImplementedError("mul: write it")\n'
MUL_TESTS = ('from pytest_concurrency import load_impl\n\nm = load_impl("mul")\n\n\n'
             'def test_mul():\n    assert m.mul(2, 3) == 6\n')


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    root = tmp_path / "kit"
    files = {
        "pytest.ini": "[pytest]\naddopts = --import-mode=importlib -p no:cacheprovider\n"
                      "testpaths = exercises\ntamper_check = off\n",
        "exercises/01_add/adder.py": STUB,
        "exercises/01_add/test_adder.py": TESTS,
        "exercises/01_add/README.md": README,
        "exercises/02_mul/mul.py": MUL_STUB,
        "exercises/02_mul/test_mul.py": MUL_TESTS,
        ".gitignore": ".pytest-concurrency/\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "the kit")
    return root


def cli(kit: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([*CLI, *args], cwd=cwd or kit, capture_output=True, text=True, env=env,
                          timeout=120)


# --- list, next, hint, reset ------------------------------------------------------


def test_list_and_next_follow_the_runs_of_watch(kit):
    listed = cli(kit, "list")
    assert listed.returncode == 0, listed.stderr
    assert "0/2 exercises passed" in listed.stdout
    assert "01_add" in listed.stdout and "not run yet" in listed.stdout
    assert cli(kit, "next").stdout.startswith("next: 01_add (not run yet)")

    from pytest_concurrency.grading.student import StudentKit, run_exercise

    (kit / "exercises/01_add/adder.py").write_text(HALF)
    run = run_exercise(StudentKit(kit), "01_add")
    assert run.grade is not None and run.grade.status == "failing", run.output
    listed = cli(kit, "list", cwd=kit / "exercises").stdout  # from a folder inside the kit
    assert "01_add" in listed and "2/3" in listed and "failing" in listed
    assert "[#######---]" in listed

    (kit / "exercises/01_add/adder.py").write_text(RIGHT)
    run_exercise(StudentKit(kit), "01_add")
    assert cli(kit, "list").stdout.splitlines()[0].endswith("1/2 exercises passed")
    assert cli(kit, "next").stdout.startswith("next: 02_mul (not run yet)")
    # progress is kept in the kit, and git does not see it
    assert (kit / ".pytest-concurrency/progress.json").is_file()
    status = subprocess.run(["git", "-C", str(kit), "status", "--porcelain", "--ignored=no"],
                            capture_output=True, text=True, check=True).stdout
    assert ".pytest-concurrency" not in status


def test_hint_shows_the_next_hint_at_each_call(kit):
    first = cli(kit, "hint", "01")
    assert first.returncode == 0
    assert first.stdout.splitlines()[:3] == ["01_add, hint 1 of 2:", "", "Use `+`."]
    assert "again for hint 2" in first.stdout
    second = cli(kit, "hint", "add").stdout
    assert "hint 2 of 2" in second and "do not take `abs()`" in second and "last hint" in second
    assert "hint 2 of 2" in cli(kit, "hint", "01_add").stdout  # the last one, again
    assert "02_mul has no hints" in cli(kit, "hint", "2").stdout


def test_bad_input_is_one_line_naming_the_problem(kit, tmp_path):
    unknown = cli(kit, "hint", "07_pool")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("pytest-concurrency hint: unknown exercise '07_pool': "
                                      "expected one of 01_add, 02_mul (or its number, e.g. 6)")
    elsewhere = cli(kit, "list", cwd=tmp_path)
    assert elsewhere.returncode == 2
    assert "not a kit folder" in elsewhere.stderr and "--kit DIR" in elsewhere.stderr
    assert len(elsewhere.stderr.strip().splitlines()) == 1
    wrong_kit = cli(kit, "next", "--kit", str(tmp_path))
    assert wrong_kit.returncode == 2 and "not a kit folder" in wrong_kit.stderr
    assert cli(kit, "list", "--kit", str(kit), cwd=tmp_path).returncode == 0
    missing = cli(kit, "reset")
    assert missing.returncode == 2 and "EXERCISE" in missing.stderr


def test_reset_restores_the_committed_stub_and_keeps_a_backup(kit):
    module = kit / "exercises/01_add/adder.py"
    module.write_text(HALF)
    git(kit, "commit", "-qam", "my work")  # committed work: the stub is older than HEAD
    module.write_text(RIGHT)
    done = cli(kit, "reset", "01")
    assert done.returncode == 0, done.stderr
    assert module.read_text() == STUB
    backups = list((kit / ".pytest-concurrency/backups/01_add").iterdir())
    assert [b.read_text() for b in backups] == [RIGHT]
    assert "is the stub again" in done.stdout and str(backups[0].relative_to(kit)) in done.stdout
    again = cli(kit, "reset", "01")
    assert "already the stub" in again.stdout
    assert len(list((kit / ".pytest-concurrency/backups/01_add").iterdir())) == 1


def test_reset_outside_git_says_so(kit):
    shutil.rmtree(kit / ".git")
    (kit / "exercises/01_add/adder.py").write_text(RIGHT)
    result = cli(kit, "reset", "01")
    assert result.returncode == 2
    assert "not a git repository" in result.stderr
    assert (kit / "exercises/01_add/adder.py").read_text() == RIGHT


# --- watch, in tmux ------------------------------------------------------------------



class Tmux:
    """One tmux server of our own (its own socket), one pane running watch."""

    def __init__(self, socket: Path) -> None:
        self.socket = str(socket)

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "w")

    def wait_for(self, text: str, deadline: float = 60.0) -> tuple[str, float]:
        """Poll the screen until ``text`` is on it; (the screen, seconds it took)."""
        began = time.monotonic()
        while True:
            screen = self.screen()
            if text in screen:
                return screen, time.monotonic() - began
            if time.monotonic() - began > deadline:
                raise AssertionError(f"{text!r} not on screen after {deadline} s:\n{screen}")
            time.sleep(0.05)



@pytest.fixture
def tmux(tmp_path: Path, kit: Path):
    need_tools("tmux")
    # A short socket path: tmux's limit is about 100 characters.
    socket = Path(f"/tmp/pcw-{os.getpid()}-{time.monotonic_ns()}")
    term = Tmux(socket)
    env = f"env PYTHONDONTWRITEBYTECODE=1 PATH={os.environ.get('PATH', '')}"
    # The shell says how watch ended: tmux 3.3 does not always keep a dead pane's status.
    command = f"cd {kit} && {env} {' '.join(CLI)} watch; echo watch ended: $?"
    term("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "40", "-s", "w", command)
    term("set-option", "-t", "w", "remain-on-exit", "on")
    yield term
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)
    socket.unlink(missing_ok=True)


def test_watch_reruns_on_save_shows_the_first_failure_and_its_hint_and_takes_keys(tmux, kit):
    screen, _ = tmux.wait_for("not started: read exercises/01_add/README.md")
    assert "pytest-concurrency watch: 01_add (exercises/01_add/adder.py)" in screen
    assert "kit [--------------------] 0/2 exercises passed" in screen
    assert "01_add  tests 0/2  points 0/3  not started" in screen
    assert "hint 1: Use `+`." in screen
    assert "keys: h hint" in screen

    (kit / "exercises/01_add/adder.py").write_text(HALF)
    _, seconds = tmux.wait_for("adder.py saved", deadline=10)
    assert seconds < 2, f"the screen took {seconds:.1f} s to show the save"
    screen, _ = tmux.wait_for("first failure: test_add_negative")
    assert "01_add  tests 1/2  points 2/3  failing" in screen
    assert "add(-1, -2) gave 3: signs matter" in screen
    assert "hint 2: Negative numbers are numbers too" in screen  # the hint its test names
    assert len(screen.rstrip().splitlines()) <= 40

    tmux("send-keys", "-t", "w", "h")
    tmux.wait_for("01_add, hint 1 of 2:", deadline=10)
    tmux("send-keys", "-t", "w", "h")
    tmux.wait_for("01_add, hint 2 of 2:", deadline=10)
    tmux("send-keys", "-t", "w", "l")
    screen, _ = tmux.wait_for("02_mul", deadline=10)
    assert "not run yet" in screen
    tmux("send-keys", "-t", "w", "r")
    tmux.wait_for("r pressed", deadline=10)
    tmux.wait_for("first failure: test_add_negative")

    (kit / "exercises/01_add/adder.py").write_text(RIGHT)  # passes: on to the next exercise
    screen, _ = tmux.wait_for("02_mul  tests 0/1  points 0/1  not started")
    assert "01_add passes. On to 02_mul." in screen
    assert "1/2 exercises passed" in screen

    tmux("send-keys", "-t", "w", "q")
    screen, _ = tmux.wait_for("stopped watching.", deadline=10)
    screen, _ = tmux.wait_for("watch ended: ", deadline=10)
    assert "watch ended: 0" in screen, f"watch did not exit 0 on q:\n{screen}"


def test_watch_exits_cleanly_on_ctrl_c(tmux, kit):
    tmux.wait_for("not started")
    tmux("send-keys", "-t", "w", "C-c")
    screen, _ = tmux.wait_for("stopped watching.", deadline=10)
    assert "Traceback" not in screen and "KeyboardInterrupt" not in screen
    screen, _ = tmux.wait_for("watch ended: ", deadline=10)
    assert "watch ended: 0" in screen, f"watch did not exit 0 on Ctrl-C:\n{screen}"


def test_watch_names_an_unknown_exercise(kit):
    result = cli(kit, "watch", "99")
    assert result.returncode == 2 and "unknown exercise '99'" in result.stderr


def test_hints_come_from_the_readme():
    from pytest_concurrency.layout import hints

    root = Path(__file__).resolve().parent.parent
    found = hints(root / "exercises/06_locks/README.md")
    assert sorted(found) == [1, 2, 3]
    assert textwrap.dedent(found[3]).startswith("```python")
