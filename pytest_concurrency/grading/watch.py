"""``pytest-concurrency watch [EXERCISE]``: run the exercise on every save of its module.

The current exercise is the one named, else the first one not passed.  Each
run clears the screen and shows the kit's progress bar, the exercise's score
line and only its first failure, cut to the terminal's height, with the hint
its test names.  Saves are seen through ``watchfiles`` (inotify and friends,
not a polling loop of ours); keys are read in cbreak mode: ``h`` next hint,
``l`` list, ``r`` run again, ``q`` quit.  Ctrl-C (or SIGTERM) stops the run
under way and restores the terminal.  When the exercise passes and none was
named, watch moves on to the next one.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import textwrap
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import watchfiles

from ..layout import hint_paragraph
from .formats import points_text
from .model import NOT_STARTED, PASSED
from .student import (
    Progress,
    Run,
    StudentKit,
    finish_run,
    kit_progress_line,
    list_lines,
    next_hint,
    start_run,
)

CLEAR = "\x1b[H\x1b[2J"
KEYS = "keys: h hint · l list · r run again · q quit"
# Saves closer together than this are one save (an editor writes a file in several steps).
DEBOUNCE_MS = 150


class _Saves:
    """Watches the exercises folder in a thread; a save of the current module wakes the loop."""

    def __init__(self, folder: Path, wake: int) -> None:
        self.folder = folder
        self.wake = wake
        self.module: Path | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="watch-saves", daemon=True)

    def _watch(self) -> None:
        def wanted(change: watchfiles.Change, path: str) -> bool:
            return change != watchfiles.Change.deleted and self.module is not None \
                and Path(path) == self.module

        for _ in watchfiles.watch(self.folder, watch_filter=wanted, debounce=DEBOUNCE_MS, step=50,
                                  stop_event=self.stop, raise_interrupt=False):
            with contextlib.suppress(OSError):
                os.write(self.wake, b"s")


@contextlib.contextmanager
def _keys() -> Iterator[int | None]:
    """The terminal in cbreak mode (keys one at a time, Ctrl-C still a signal), restored after;
    None when standard input is not a terminal."""
    fd = sys.stdin.fileno() if sys.stdin is not None else -1
    if fd < 0 or not os.isatty(fd):
        yield None
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class Watch:
    def __init__(self, kit: StudentKit, exercise: str | None) -> None:
        self.kit = kit
        self.follow = exercise is None  # move on to the next exercise once this one passes
        self.exercise = exercise or Progress.load(kit).current(kit)
        self.tmp = Path(tempfile.mkdtemp(prefix="pytest-concurrency-watch-"))
        self.out = self.tmp / "grade.json"
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.reader: threading.Thread | None = None
        self.last: Run | None = None
        self.why = "first run"
        self.note = ""  # a line above the result: what happened since
        self.extra: list[str] = []  # below the result: a hint or the list, on request

    # -- runs ------------------------------------------------------------------

    def start(self, why: str) -> None:
        self.stop_run()
        self.why = why
        self.output = []
        self.proc = start_run(self.kit, self.exercise, self.out)
        stream = self.proc.stdout
        self.reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.reader.start()
        self.draw()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.output.append(line)

    def stop_run(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def poll(self) -> bool:
        """Whether the run under way just finished (its result is then on screen)."""
        if self.proc is None or self.proc.poll() is None:
            return False
        code = self.proc.returncode
        self.proc = None
        if self.reader is not None:
            self.reader.join(timeout=5)
        self.last = finish_run(self.kit, self.exercise, self.out, "".join(self.output), code)
        self.extra = []
        grade = self.last.grade
        if grade is not None and grade.status == PASSED and self.follow:
            following = Progress.load(self.kit).current(self.kit)
            if following != self.exercise and Progress.load(self.kit).status(following) != PASSED:
                self.note = f"{self.exercise} passes. On to {following}."
                self.exercise = following
                return True
        self.draw()
        return True

    # -- the screen --------------------------------------------------------------

    def size(self) -> os.terminal_size:
        return shutil.get_terminal_size((100, 30))

    def draw(self) -> None:
        columns, rows = self.size()
        module = self.kit.module(self.exercise)
        head = [f"pytest-concurrency watch: {self.exercise} ({self.kit.relative(module)})",
                kit_progress_line(self.kit, Progress.load(self.kit))]
        if self.note:
            head.append(self.note)
        head.append("")
        body: list[str] = []
        if self.proc is not None:
            body.append(f"running {self.exercise} ({self.why}) ...")
        elif self.last is not None:
            body.extend(self._result())
        body = _wrap(body, columns)
        tail = ["", *_wrap(self.extra, columns), "", KEYS] if self.extra else ["", KEYS]
        room = max(3, rows - len(head) - len(tail) - 1)
        if len(body) > room:
            cut = len(body) - room + 1
            body = [*body[: room - 1], f"... {cut} more lines: pytest exercises/{self.exercise} -x"]
        lines = [line[:columns] for line in head + body + tail]
        sys.stdout.write(CLEAR + "\n".join(lines) + "\n")
        sys.stdout.flush()

    def _result(self) -> list[str]:
        run = self.last
        assert run is not None
        grade = run.grade
        if grade is None:
            lines = run.output.strip().splitlines()
            return [f"pytest could not run {self.exercise} (exit status {run.exit_code}):", *lines[-20:]]
        score = (f"{grade.name}  tests {grade.passed}/{len(grade.tests)}  points "
                 f"{points_text(grade.score)}/{points_text(grade.max_score)}  {grade.status}")
        lines = [score, ""]
        if grade.status == PASSED:
            lines.append(f"{grade.name} passes. Well done!")
            return lines
        if grade.status == NOT_STARTED:
            lines.append(f"not started: read {self.kit.relative(self.kit.readme(grade.name))}, "
                         f"then write {self.kit.relative(self.kit.module(grade.name))}.")
        else:
            failure = grade.first_failure or next(t for t in grade.tests if not t.passed)
            lines.append(f"first failure: {failure.function}")
            lines.extend(failure.explanation.rstrip().splitlines())
        number = grade.hint_number
        hint = hint_paragraph(self.kit.readme(grade.name), number)
        if hint:
            lines.extend(["", f"hint {number}: {hint}"])
        return lines

    # -- keys ----------------------------------------------------------------------

    def key(self, key: str) -> bool:
        """Act on one key; False to quit."""
        if key in ("q", "Q", "\x04"):
            return False
        if key in ("r", "R"):
            self.note = ""
            self.start("r pressed")
        elif key in ("h", "H"):
            self.extra = next_hint(self.kit, self.exercise, Progress.load(self.kit))
            self.draw()
        elif key in ("l", "L"):
            self.extra = list_lines(self.kit, Progress.load(self.kit))
            self.draw()
        return True

    # -- the loop --------------------------------------------------------------------

    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        saves = _Saves(self.kit.exercises, wake_w)
        saves.module = self.kit.module(self.exercise).resolve()
        saves.thread.start()
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with _keys() as keys:
                self.start("first run")
                while True:
                    watched = [wake_r] + ([keys] if keys is not None else [])
                    ready, _, _ = select.select(watched, [], [], 0.1)
                    if wake_r in ready:
                        os.read(wake_r, 4096)
                        self.note = ""
                        self.start(f"{saves.module.name if saves.module else 'module'} saved "
                                   f"{time.strftime('%H:%M:%S')}")
                    if keys is not None and keys in ready:
                        typed = os.read(keys, 32).decode("utf-8", "replace")
                        if not typed or not all(self.key(k) for k in typed):
                            break
                    if self.poll() and self.kit.module(self.exercise).resolve() != saves.module:
                        saves.module = self.kit.module(self.exercise).resolve()
                        self.start("next exercise")
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop_run()
            saves.stop.set()
            saves.thread.join(timeout=5)
            os.close(wake_r)
            os.close(wake_w)
            shutil.rmtree(self.tmp, ignore_errors=True)
        sys.stdout.write("\nstopped watching.\n")
        sys.stdout.flush()
        return 0


def _wrap(lines: list[str], columns: int) -> list[str]:
    """Lines that fit the terminal: prose wrapped at spaces, code and tracebacks cut in pieces."""
    wrapped: list[str] = []
    width = max(20, columns)
    for line in lines:
        if len(line) <= width:
            wrapped.append(line)
        elif line.startswith((" ", "E ", ">")):
            wrapped.extend(line[i:i + width] for i in range(0, len(line), width))
        else:
            wrapped.extend(textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False))
    return wrapped


def _interrupt(number: int, frame: object) -> None:
    """SIGTERM ends watch as Ctrl-C does: the run under way stopped, the terminal restored."""
    raise KeyboardInterrupt


def watch(kit: StudentKit, exercise: str | None) -> int:
    return Watch(kit, exercise).run()
