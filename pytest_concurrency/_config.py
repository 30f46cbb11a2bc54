"""One reader for the plugin's settings: command line option, ini key, environment variable.

A setting is declared once, beside the part that uses it: its name, the
option, the ini key, the environment variable (any of the three may be
missing), one help text for all of them, a parser and a default::

    DEADLOCK_TIMEOUT = Setting(
        "deadlock_timeout", option="--deadlock-timeout", metavar="S", parse=seconds,
        default=1.0, shown_default="1.0",
        help="real (uncontrolled) runs: a wait-for cycle that lasts S seconds fails the test",
    )

    def pytest_addoption(parser):
        add(parser, DEADLOCK_TIMEOUT)          # --deadlock-timeout and ini deadlock_timeout

    def pytest_configure(config):
        timeout = read(config, DEADLOCK_TIMEOUT)   # a float

:func:`read` takes the first of: the command line option, the ini key, the
environment variable, the default (an empty value counts as not given).  A
value that does not parse is a :class:`pytest.UsageError` that says where it
came from and what was expected::

    --deadlock-timeout=abc: expected a number of seconds >= 0
    deadlock_timeout = abc (ini, pytest.ini): expected a number of seconds >= 0
    PYTEST_MEMCACHED_SERVERS=localhost (environment): 'localhost' is not HOST:PORT; expected ...

so pytest stops with exit status 4 and that one line.  Values are read once
per session (:func:`read` remembers them in the config).  Where there is no
pytest config (the grading supervisor, the CLI), :func:`read_env` reads a
setting's environment variable the same way.

Parsers take the text and the folder relative paths start from (the
invocation folder for options and the environment, the ini file's folder for
ini keys) and raise :class:`ValueError` with a message that ends in what was
expected: :func:`seconds`, :func:`choice`, :func:`path_to`, :func:`host_ports`,
:func:`text`, :func:`flag`.

Not settings: the variables the plugin sets for its own child processes
(``PYTEST_CONCURRENCY_ISOLATED_CHILD``, ``PYTEST_CONCURRENCY_CHANNEL``,
``PYTEST_CONCURRENCY_DESELECT``), read before anything else is imported there,
and other plugins' options (pytest-timeout's ``timeout``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

T = TypeVar("T")

Parser = Callable[[str, Path], T]

GROUP = "concurrency"
GROUP_DESCRIPTION = "pytest-concurrency"


@dataclass(frozen=True, eq=False)
class Setting(Generic[T]):
    """A setting, declared once: where it can be given, what it means, how it is read."""

    name: str  # the option's dest and, when ``ini`` is set, the ini key
    help: str  # shared by the option and the ini key
    parse: Parser[T]
    default: T
    option: str | None = None  # "--deadlock-timeout"
    ini: bool = True
    env: str | None = None  # "PYTEST_MEMCACHED_BIN"
    metavar: str | None = None
    shown_default: str | None = None  # for the help text; None: no default is shown
    forward: bool = True  # given to an isolated test's fresh interpreter too

    def full_help(self) -> str:
        """The help text with the default and the environment variable, if any."""
        notes = []
        if self.shown_default is not None:
            notes.append(f"default: {self.shown_default}")
        if self.env:
            notes.append(f"environment: {self.env}")
        return f"{self.help} [{'; '.join(notes)}]" if notes else self.help


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from, as its error messages name it."""

    setting: Setting[Any]
    kind: str  # "option", "ini", "env" or "default"
    text: str = ""  # the value as given
    where: str = ""  # ini: the file (or "-o"); otherwise unused

    def __str__(self) -> str:
        """With the value: ``--x=1``, ``x = 1 (ini, pytest.ini)``, ``X=1 (environment)``."""
        s = self.setting
        shown = {
            "option": f"{s.option}={self.text}",
            "ini": f"{s.name} = {self.text} (ini, {self.where})",
            "env": f"{s.env}={self.text} (environment)",
        }
        return shown.get(self.kind, f"{s.name} (default)")

    @property
    def name(self) -> str:
        """Without the value: ``--x``, ``x (ini, pytest.ini)``, ``X (environment)``."""
        s = self.setting
        if self.kind == "option":
            return str(s.option)
        if self.kind == "ini":
            return f"{s.name} (ini, {self.where})"
        if self.kind == "env":
            return f"{s.env} (environment)"
        return f"{s.name} (default)"


@dataclass(frozen=True)
class Value(Generic[T]):
    """A setting's value and its :class:`Origin`."""

    value: T
    origin: Origin


_registered: dict[str, Setting[Any]] = {}


def add(parser: pytest.Parser, *settings: Setting[Any]) -> None:
    """Register each setting's option (in the plugin's group) and ini key."""
    group = parser.getgroup(GROUP, GROUP_DESCRIPTION)
    for setting in settings:
        if setting.option:
            group.addoption(
                setting.option, dest=setting.name, metavar=setting.metavar, default=None,
                help=setting.full_help(),
            )
        if setting.ini:
            parser.addini(setting.name, setting.full_help(), default=None)
        _registered[setting.name] = setting


def registered() -> list[Setting[Any]]:
    """Every setting added so far (by the parts that are loaded)."""
    return list(_registered.values())


_values_key = pytest.StashKey[dict[str, Value[Any]]]()


def read(config: pytest.Config, setting: Setting[T]) -> T:
    """The setting's value: option, else ini, else environment, else default."""
    return lookup(config, setting).value


def lookup(config: pytest.Config, setting: Setting[T]) -> Value[T]:
    """:func:`read`, with where the value came from."""
    cache = config.stash.setdefault(_values_key, {})
    known = cache.get(setting.name)
    if known is None:
        known = cache[setting.name] = _lookup(config, setting)
    return known


def _lookup(config: pytest.Config, setting: Setting[T]) -> Value[T]:
    here = Path(config.invocation_params.dir)
    if setting.option:
        given = config.getoption(setting.name, default=None)
        if given not in (None, ""):  # empty, from any source: not set
            return _parsed(setting, Origin(setting, "option", str(given)), here)
    if setting.ini:
        try:
            given = config.getini(setting.name)
        except ValueError:  # not added: its part is left out (-p no:...)
            given = None
        if given not in (None, "", []):
            where, base = _ini_location(config, setting)
            return _parsed(setting, Origin(setting, "ini", str(given), where), base)
    return _from_env(setting, os.environ, here)


def read_env(setting: Setting[T], environ: Mapping[str, str] | None = None) -> T:
    """The setting's value from the environment alone (no pytest config), else its default."""
    return lookup_env(setting, environ).value


def lookup_env(setting: Setting[T], environ: Mapping[str, str] | None = None) -> Value[T]:
    """:func:`read_env`, with where the value came from."""
    return _from_env(setting, os.environ if environ is None else environ, Path.cwd())


def _from_env(setting: Setting[T], environ: Mapping[str, str], base: Path) -> Value[T]:
    if setting.env:
        given = environ.get(setting.env)
        if given:
            return _parsed(setting, Origin(setting, "env", given), base)
    return Value(setting.default, Origin(setting, "default"))


def _parsed(setting: Setting[T], origin: Origin, base: Path) -> Value[T]:
    try:
        return Value(setting.parse(origin.text, base), origin)
    except ValueError as error:
        raise pytest.UsageError(f"{origin}: {error}") from None


def _ini_location(config: pytest.Config, setting: Setting[Any]) -> tuple[str, Path]:
    """(how to name where the ini value was set, the folder its relative paths start from)."""
    here = Path(config.invocation_params.dir)
    overrides = config.getoption("override_ini", default=None) or []
    if any(o.partition("=")[0].strip() == setting.name for o in overrides):
        return "-o", here
    inipath = config.inipath
    if inipath is None:
        return "the ini file", here
    shown = inipath.name if inipath.parent == here else str(inipath)
    return shown, inipath.parent


def forwarded_options(config: pytest.Config) -> list[str]:
    """``--option=value`` for each forwardable setting given on the command line."""
    args = []
    for setting in registered():
        if not setting.option or not setting.forward:
            continue
        given = config.getoption(setting.name, default=None)
        if given not in (None, ""):
            args.append(f"{setting.option}={given}")
    return args


# ---------------------------------------------------------------- parsers


def seconds(text: str, base: Path) -> float:
    """A number of seconds >= 0 (``0`` usually means off).

    >>> seconds("0.5", Path())
    0.5
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise ValueError("expected a number of seconds >= 0")
    return value


def choice(*options: str) -> Parser[str]:
    """One of ``options``, exactly.

    >>> choice("report", "off")("off", Path())
    'off'
    """
    def parse(text: str, base: Path) -> str:
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


PATH_KINDS = ("anything", "folder", "file in folder")


def path_to(kind: str = "anything") -> Parser[Path]:
    """A path, ``~`` expanded, relative ones from ``base``; ``kind`` says what must exist.

    ``"anything"``: nothing (checked where it is used); ``"folder"``: an existing
    folder; ``"file in folder"``: a file, existing or not, in an existing folder.

    >>> str(path_to("folder")("/", Path("/tmp")))
    '/'
    """
    if kind not in PATH_KINDS:
        raise TypeError(f"path_to({kind!r}): expected one of {PATH_KINDS}")

    def parse(text: str, base: Path) -> Path:
        value = Path(base, Path(text).expanduser())
        if kind == "folder" and not value.is_dir():
            raise ValueError(f"no such folder ({value}); expected an existing folder")
        if kind == "file in folder" and not value.parent.is_dir():
            raise ValueError(
                f"folder {value.parent} does not exist; expected a file in an existing folder"
            )
        return value

    return parse


def host_ports(text: str, base: Path | None = None) -> tuple[tuple[str, int], ...]:
    """``"h1:11211, [::1]:11212"`` -> ``(("h1", 11211), ("::1", 11212))``.

    >>> host_ports("127.0.0.1:11211, localhost:11212")
    (('127.0.0.1', 11211), ('localhost', 11212))
    """
    expected = "expected a comma-separated list of HOST:PORT, e.g. 127.0.0.1:11211"
    found = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not HOST:PORT; {expected}")
        found.append((host, int(port)))
    if not found:
        raise ValueError(f"no server given; {expected}")
    return tuple(found)


def text(value: str, base: Path) -> str:
    """Any text, as given."""
    return value


def flag(value: str, base: Path) -> bool:
    """Set at all (to any non-empty text, as CI services set ``CI``): True."""
    return True
