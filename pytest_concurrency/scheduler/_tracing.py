"""Preemption points: one event per bytecode of user code in controlled threads.

User code is everything outside the standard library, site-packages and the
plugin itself: the test file and the code under test.  On 3.12+ the events
come from ``sys.monitoring`` (per code object, from its very first
execution); on 3.10/3.11 from ``sys.settrace`` with opcode events, which
deliver the same events on every execution there.  (``sys.settrace`` on
3.12+ delivers no opcode events on a function's first execution, which
would make a replay differ from the run it replays.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from .._frames import is_user_file
from . import _real, _state


class SettraceTracer:
    """3.10/3.11: a per-thread trace function with opcode events in user frames.

    ``frame_tracer(code)`` makes the trace function of one frame of user code:
    it gets every event of that frame, one per bytecode, so the scheduler
    writes it (the hot path) itself.  It must drop its own reference at the
    "return" event, so that it does not outlive the frame in a cycle.
    """

    def __init__(self, frame_tracer: Callable[[CodeType], Any]) -> None:
        def global_(frame: FrameType, event: str, arg: object):
            # frame.f_code is an audited attribute (every audit hook runs on each
            # read, a microsecond once one is in): read it once per call of user
            # code, never per opcode, and not at all for a library module's code.
            module_file = frame.f_globals.get("__file__")
            if type(module_file) is str and not is_user_file(module_file):
                return None
            code = frame.f_code
            if not is_user_file(code.co_filename):
                return None
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            return frame_tracer(code)

        self._global = global_

    def start(self) -> None:
        """Called in the controlled thread itself: settrace is per thread."""
        sys.settrace(self._global)

    def stop_thread(self) -> None:
        sys.settrace(None)

    def begin_run(self) -> None:
        pass

    def end_run(self) -> None:
        pass


class MonitoringTracer:
    """3.12+: ``sys.monitoring`` INSTRUCTION events, switched on per user code object.

    Monitoring is process-wide, and a change of the events that are on makes
    the interpreter instrument anew every function it runs next (Hypothesis's
    too, once per example).  So it is armed at the first run and stays armed
    while the scheduler's patches are in (for a schedule test, until the test
    ends): see :func:`disarm_monitoring`.  Armed, PY_START switches INSTRUCTION
    events on for each user code object it meets, and off for good for library
    code; an INSTRUCTION event counts only in a controlled thread, where it
    goes to that thread's scheduler.
    """

    def begin_run(self) -> None:
        _arm_monitoring()

    def end_run(self) -> None:
        pass

    def start(self) -> None:
        pass

    def stop_thread(self) -> None:
        pass


_monitoring_tool: int | None = None
_monitoring_armed = False
# Code objects compare by value (two compilations of the same source are
# equal): a list, and the interpreter's own record of which are instrumented.
_instrumented: list[CodeType] = []


def _claim_tool() -> int:
    global _monitoring_tool
    if _monitoring_tool is None:
        monitoring = sys.monitoring  # type: ignore[attr-defined]  # 3.12+; mypy checks as 3.11
        for tool in (4, 3, 2, 5, 1, 0):
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "pytest-concurrency scheduler")
                _monitoring_tool = tool
                break
        else:
            raise RuntimeError(
                "schedule.run() needs a sys.monitoring tool id and all six are taken "
                "(debuggers, coverage, profilers): run without one of them"
            )
    return _monitoring_tool


def _arm_monitoring() -> None:
    global _monitoring_armed
    if _monitoring_armed:
        return
    monitoring = sys.monitoring  # type: ignore[attr-defined]  # 3.12+; mypy checks as 3.11
    events = monitoring.events
    tool = _claim_tool()
    instrumented = _instrumented
    controlled = _state.controlled
    get_ident = _real.get_ident
    disable = monitoring.DISABLE
    set_local_events = monitoring.set_local_events
    get_local_events = monitoring.get_local_events

    def on_start(code: CodeType, offset: int):
        if get_local_events(tool, code):
            return None
        if is_user_file(code.co_filename) and _module_is_user(code):
            instrumented.append(code)
            set_local_events(tool, code, events.INSTRUCTION)
            return None
        return disable

    def on_instruction(code: CodeType, offset: int):
        record = controlled.get(get_ident())
        if record is not None:
            record.scheduler._on_instruction(code, offset)

    monitoring.register_callback(tool, events.PY_START, on_start)
    monitoring.register_callback(tool, events.INSTRUCTION, on_instruction)
    monitoring.set_events(tool, events.PY_START)
    _monitoring_armed = True


def _module_is_user(code: CodeType) -> bool:
    """For code made by ``exec`` (``<string>``), whether the module that made it is user code.

    A dataclass's ``__init__`` is such code, made with its module's globals:
    the plugin's, the standard library's or the student's.  Called once per
    code object, from ``on_start``, whose caller is the frame starting.
    """
    if not code.co_filename.startswith("<"):
        return True
    module_file = sys._getframe(2).f_globals.get("__file__")
    return type(module_file) is not str or is_user_file(module_file)


def disarm_monitoring() -> None:
    """Switch every event off again (no-op where there is nothing to disarm)."""
    global _monitoring_armed
    if not _monitoring_armed:
        return
    monitoring = sys.monitoring  # type: ignore[attr-defined]  # 3.12+; mypy checks as 3.11
    tool = _claim_tool()
    monitoring.set_events(tool, 0)
    for code in _instrumented:
        monitoring.set_local_events(tool, code, 0)
    _instrumented.clear()
    monitoring.register_callback(tool, monitoring.events.PY_START, None)
    monitoring.register_callback(tool, monitoring.events.INSTRUCTION, None)
    _monitoring_armed = False


def make_tracer(frame_tracer: Callable[[CodeType], Any]):
    """The tracer of this interpreter: ``frame_tracer`` serves 3.10/3.11; on 3.12+
    the events go to the scheduler of the thread they happen in."""
    if _real.HAS_MONITORING:
        return MonitoringTracer()
    return SettraceTracer(frame_tracer)
