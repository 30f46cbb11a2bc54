"""Exceptions shared by the plugin's parts and raised into user code."""

from __future__ import annotations


class ConcurrencyError(Exception):
    """Base class of every error the plugin reports about concurrent code."""


class DeadlockError(ConcurrencyError):
    """Every live thread is blocked: nobody can make progress.

    Raised by ``schedule.run`` as soon as the controlled scheduler sees it, and
    raised inside the blocked threads of a real run to unwind them.  The message
    names each thread, what it holds, what it waits for and where.
    """


class LivelockError(ConcurrencyError):
    """A thread runs on without end while nobody else can make progress."""


class ImplementationError(Exception):
    """The implementation under test could not be loaded (missing file, syntax error)."""
