"""Settings (``pytest_concurrency/_config.py``): option, then ini, then environment, then default.

Each kind of setting (seconds, a choice, a path, a HOST:PORT list) is checked
twice: through a plugin of the test's own that declares one setting of each
kind with all three sources, and through the plugin's real settings.  A bad
value from any source stops pytest with a usage error (exit status 4) and one
line that says where the value came from and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_concurrency import _config

# ---------------------------------------------------------------------------
# The parsers


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("1.5", 1.5), ("60", 60.0), (" 2 ", 2.0)])
def test_seconds_reads_a_number_of_seconds(text, seconds):
    assert _config.seconds(text, Path()) == seconds


@pytest.mark.parametrize("text", ["-1", "-0.5", "abc", "", "nan", "inf", "1s"])
def test_seconds_refuses_what_is_not_a_number_of_seconds(text):
    with pytest.raises(ValueError, match=r"^expected a number of seconds >= 0$"):
        _config.seconds(text, Path())


def test_choice_takes_one_of_its_options_exactly():
    parse = _config.choice("report", "enforce", "off")
    assert parse("enforce", Path()) == "enforce"
    for bad in ("Report", "loud", "", "report,off"):
        with pytest.raises(ValueError, match=r"^expected one of report, enforce, off$"):
            parse(bad, Path())


def test_path_to_resolves_relative_paths_from_the_base(tmp_path):
    (tmp_path / "sub").mkdir()
    assert _config.path_to("folder")("sub", tmp_path) == tmp_path / "sub"
    assert _config.path_to("anything")("no/such", tmp_path) == tmp_path / "no/such"
    assert _config.path_to("anything")("/abs", tmp_path) == Path("/abs")
    assert _config.path_to("file in folder")("sub/out.json", tmp_path) == tmp_path / "sub/out.json"
    assert _config.path_to("anything")("~", tmp_path) == Path.home()


def test_path_to_checks_what_its_kind_says_exists(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"^no such folder \(.*nowhere\); expected an existing folder$"):
        _config.path_to("folder")("nowhere", tmp_path)
    with pytest.raises(ValueError, match=r"^no such folder \(.*file\)"):
        _config.path_to("folder")("file", tmp_path)
    with pytest.raises(ValueError, match=r"^folder .*nowhere does not exist; expected a file in an existing folder$"):
        _config.path_to("file in folder")("nowhere/out.json", tmp_path)
    with pytest.raises(TypeError):
        _config.path_to("dir")


def test_host_ports_reads_a_comma_separated_list():
    assert _config.host_ports("127.0.0.1:11211, [::1]:2,localhost:3,") == (
        ("127.0.0.1", 11211), ("::1", 2), ("localhost", 3),
    )


@pytest.mark.parametrize("text", ["localhost", ":11211", "h:port", "h:70000", "h:0", " , ", "", "h:1,h"])
def test_host_ports_refuses_what_is_not_host_port(text):
    with pytest.raises(ValueError, match=r"expected a comma-separated list of HOST:PORT, e\.g\. 127\.0\.0\.1:11211$"):
        _config.host_ports(text)


def test_flag_is_set_by_any_text():
    assert _config.flag("false", Path()) is True


# ---------------------------------------------------------------------------
# Reading without a pytest config (the supervisor, the CLI)

ENV_SECONDS = _config.Setting(
    "demo_seconds", help="demo", option="--demo-seconds", env="DEMO_SECONDS", parse=_config.seconds,
    default=7.0,
)


def test_read_env_takes_the_environment_then_the_default():
    assert _config.read_env(ENV_SECONDS, {"DEMO_SECONDS": "2.5"}) == 2.5
    assert _config.read_env(ENV_SECONDS, {"DEMO_SECONDS": ""}) == 7.0  # empty: not set
    assert _config.read_env(ENV_SECONDS, {}) == 7.0
    value = _config.lookup_env(ENV_SECONDS, {"DEMO_SECONDS": "1"})
    assert (value.value, value.origin.kind, str(value.origin)) == (1.0, "env", "DEMO_SECONDS=1 (environment)")
    assert value.origin.name == "DEMO_SECONDS (environment)"


def test_read_env_names_the_variable_of_a_bad_value():
    with pytest.raises(pytest.UsageError) as caught:
        _config.read_env(ENV_SECONDS, {"DEMO_SECONDS": "soon"})
    assert str(caught.value) == "DEMO_SECONDS=soon (environment): expected a number of seconds >= 0"


def test_read_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("DEMO_SECONDS", "3")
    assert _config.read_env(ENV_SECONDS) == 3.0


def test_the_help_text_is_shared_and_says_the_default_and_the_variable():
    setting = _config.Setting("x", help="what x is", parse=_config.text, default="a",
                              shown_default="a", env="X_ENV")
    assert setting.full_help() == "what x is [default: a; environment: X_ENV]"
    assert _config.Setting("y", help="what y is", parse=_config.text, default="").full_help() == "what y is"


# ---------------------------------------------------------------------------
# The precedence, through a plugin with one setting of each kind in all three places

DEMO_PLUGIN = """
from pytest_concurrency import _config as c

SETTINGS = {
    "seconds": c.Setting("demo_seconds", help="h", option="--demo-seconds", env="DEMO_SECONDS",
                         parse=c.seconds, default=7.0),
    "choice": c.Setting("demo_choice", help="h", option="--demo-choice", env="DEMO_CHOICE",
                        parse=c.choice("red", "green", "blue", "grey"), default="grey"),
    "path": c.Setting("demo_path", help="h", option="--demo-path", env="DEMO_PATH",
                      parse=c.path_to("folder"), default=None),
    "servers": c.Setting("demo_servers", help="h", option="--demo-servers", env="DEMO_SERVERS",
                         parse=c.host_ports, default=()),
}


def pytest_addoption(parser):
    c.add(parser, *SETTINGS.values())


def pytest_report_header(config):
    return [f"demo {kind}: {c.read(config, s)!r} from {c.lookup(config, s).origin.kind}"
            for kind, s in SETTINGS.items()]
"""

# kind: (option value, ini value, environment value), each valid and different.
GOOD = {
    "seconds": ("1.5", "2.5", "3.5"),
    "choice": ("red", "green", "blue"),
    "path": ("from_option", "from_ini", "from_env"),
    "servers": ("a:1", "b:2", "c:3,d:4"),
}
EXPECTED = {
    "seconds": {"option": "1.5", "ini": "2.5", "env": "3.5", "default": "7.0"},
    "choice": {"option": "'red'", "ini": "'green'", "env": "'blue'", "default": "'grey'"},
    "path": {"option": "*from_option')", "ini": "*from_ini')", "env": "*from_env')", "default": "None"},
    "servers": {"option": "(('a', 1),)", "ini": "(('b', 2),)", "env": "(('c', 3), ('d', 4))",
                "default": "()"},
}


@pytest.fixture
def demo(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(DEMO_PLUGIN)
    pytester.makepyfile(test_nothing="def test_nothing(): pass")
    for folder in ("from_option", "from_ini", "from_env"):
        (pytester.path / folder).mkdir()
    return pytester


def _given(demo: pytest.Pytester, monkeypatch, kind: str, sources: tuple[str, ...],
           values: tuple[str, str, str]) -> list[str]:
    option, ini, env = values
    name = f"demo_{kind}"
    if "ini" in sources:
        demo.makeini(f"[pytest]\n{name} = {ini}\n")
    if "env" in sources:
        monkeypatch.setenv(name.upper(), env)
    return [f"--demo-{kind}={option}"] if "option" in sources else []


@pytest.mark.parametrize("kind", sorted(GOOD))
@pytest.mark.parametrize(
    ("sources", "winner"),
    [
        (("option", "ini", "env"), "option"),  # the option wins over the ini
        (("ini", "env"), "ini"),               # the ini over the environment
        (("option", "env"), "option"),
        (("env",), "env"),                     # the environment over the default
        ((), "default"),
    ],
)
def test_the_option_wins_over_the_ini_over_the_environment_over_the_default(
    demo, monkeypatch, kind, sources, winner
):
    args = _given(demo, monkeypatch, kind, sources, GOOD[kind])
    result = demo.runpytest_inprocess(*args)
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines([f"demo {kind}: {EXPECTED[kind][winner]} from {winner}"])


def test_relative_paths_in_the_ini_file_start_from_its_folder(demo, monkeypatch):
    (demo.path / "sub" / "from_ini").mkdir(parents=True)
    (demo.path / "sub" / "tox.ini").write_text("[pytest]\ndemo_path = from_ini\n")
    (demo.path / "sub" / "conftest.py").write_text(DEMO_PLUGIN)
    (demo.path / "sub" / "test_nothing.py").write_text("def test_nothing(): pass\n")
    (demo.path / "conftest.py").unlink()
    result = demo.runpytest_inprocess("-c", "sub/tox.ini", "--rootdir=sub", "sub")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines([f"demo path: *{demo.path / 'sub' / 'from_ini'}') from ini"])


BAD = {
    "seconds": ("-1", "expected a number of seconds >= 0"),
    "choice": ("purple", "expected one of red, green, blue, grey"),
    "path": ("nowhere", "no such folder (*nowhere); expected an existing folder"),
    "servers": ("localhost", "'localhost' is not HOST:PORT; expected a comma-separated list of "
                "HOST:PORT, e.g. 127.0.0.1:11211"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("source", ["option", "ini", "env"])
def test_a_bad_value_is_one_line_naming_its_source_and_the_expected_form(
    demo, monkeypatch, kind, source
):
    bad, expected = BAD[kind]
    args = _given(demo, monkeypatch, kind, (source,), (bad, bad, bad))
    named = {
        "option": f"--demo-{kind}={bad}",
        "ini": f"demo_{kind} = {bad} (ini, tox.ini)",
        "env": f"DEMO_{kind.upper()}={bad} (environment)",
    }[source]
    result = demo.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: {named}: {expected}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_bad_value_given_with_dash_o_says_so(demo):
    result = demo.runpytest_inprocess("-o", "demo_seconds=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: demo_seconds = soon (ini, -o): expected a number of seconds >= 0"])


def test_a_bad_value_is_a_usage_error_in_a_real_pytest_process(demo, monkeypatch):
    """Exit status 4 and one line on stderr, not a traceback, also outside pytester's process."""
    monkeypatch.setenv("DEMO_SERVERS", "nowhere:port")
    result = demo.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.strip()] == [
        "ERROR: DEMO_SERVERS=nowhere:port (environment): 'nowhere:port' is not HOST:PORT; "
        "expected a comma-separated list of HOST:PORT, e.g. 127.0.0.1:11211"
    ]


def test_a_bad_value_of_a_setting_nobody_reads_stops_nothing(demo, monkeypatch):
    """Values are read where they are used: an unused setting's variable is not checked."""
    monkeypatch.setenv("DEMO_UNUSED", "nonsense")
    assert demo.runpytest_inprocess().ret == 0


# ---------------------------------------------------------------------------
# The plugin's own settings

READ_SETTINGS = """
from pytest_concurrency import _config
from pytest_concurrency.deadlock.plugin import DEADLOCK_TIMEOUT, EXERCISE_BUDGET, EXERCISE_TIMEOUT
from pytest_concurrency.fixtures.memcached_server import MEMCACHED_BIN, MEMCACHED_SERVERS
from pytest_concurrency.grading.plugin import GRADE_JSON, TAMPER_CHECK
from pytest_concurrency.hygiene.scope import HYGIENE_SCOPE
from pytest_concurrency.impl import IMPL

def test_show(request):
    for setting in (DEADLOCK_TIMEOUT, EXERCISE_TIMEOUT, EXERCISE_BUDGET, MEMCACHED_BIN, MEMCACHED_SERVERS,
                    GRADE_JSON, TAMPER_CHECK, HYGIENE_SCOPE, IMPL):
        value = _config.lookup(request.config, setting)
        print(f"setting {setting.name}: {value.value!r} from {value.origin.kind}")
"""


@pytest.fixture
def plugin_run(pytester: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    for name in ("PYTEST_MEMCACHED_BIN", "PYTEST_MEMCACHED_SERVERS", "PYTEST_CONCURRENCY_EXERCISE_BUDGET"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_show=READ_SETTINGS)
    return pytester


def _settings(result: pytest.RunResult) -> dict[str, str]:
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    lines = [line.split("setting ", 1)[1] for line in result.stdout.lines if "setting " in line]
    return dict(line.split(": ", 1) for line in lines)


def test_the_plugin_settings_have_their_documented_defaults(plugin_run):
    shown = _settings(plugin_run.runpytest_inprocess("-s", "-p", "no:cacheprovider"))
    assert shown == {
        "deadlock_timeout": "1.0 from default",
        "exercise_timeout": "27.0 from default",
        "exercise_budget": "30.0 from default",
        "memcached_bin": "None from default",
        "memcached_servers": "() from default",
        "grade_json": "None from default",
        "tamper_check": "'report' from default",
        "hygiene_scope": "'exercises' from default",
        "impl": "None from default",
    }


def test_the_plugin_settings_are_read_from_options(plugin_run, monkeypatch):
    (plugin_run.path / "answers").mkdir()
    plugin_run.makeini(
        "[pytest]\ndeadlock_timeout = 9\nexercise_timeout = 9\nmemcached_bin = /ini/memcached\n"
        "memcached_servers = ini:1\ntamper_check = off\nhygiene_scope = all\n"
    )
    monkeypatch.setenv("PYTEST_MEMCACHED_BIN", "/env/memcached")
    monkeypatch.setenv("PYTEST_MEMCACHED_SERVERS", "env:1")
    shown = _settings(plugin_run.runpytest_inprocess(
        "-s", "-p", "no:cacheprovider", "--deadlock-timeout=0.25", "--exercise-timeout", "5", "--exercise-budget=12",
        "--memcached-bin=/opt/memcached", "--memcached-servers=h:1,h:2", "--grade-json=g.json",
        "--tamper-check=enforce", "--impl=answers",
    ))
    assert shown == {
        "deadlock_timeout": "0.25 from option",
        "exercise_timeout": "5.0 from option",
        "exercise_budget": "12.0 from option",
        "memcached_bin": "PosixPath('/opt/memcached') from option",
        "memcached_servers": "(('h', 1), ('h', 2)) from option",
        "grade_json": f"PosixPath('{plugin_run.path / 'g.json'}') from option",
        "tamper_check": "'enforce' from option",
        "hygiene_scope": "'all' from ini",  # an ini key only
        "impl": f"PosixPath('{plugin_run.path / 'answers'}') from option",
    }


def test_the_plugin_settings_are_read_from_the_ini_file_then_the_environment(plugin_run, monkeypatch):
    plugin_run.makeini(
        "[pytest]\ndeadlock_timeout = 0.5\nexercise_timeout = 30\nmemcached_servers = ini:1\n"
        "tamper_check = off\n"
    )
    monkeypatch.setenv("PYTEST_MEMCACHED_BIN", "/env/memcached")
    monkeypatch.setenv("PYTEST_MEMCACHED_SERVERS", "env:1")
    monkeypatch.setenv("PYTEST_CONCURRENCY_EXERCISE_BUDGET", "45")
    shown = _settings(plugin_run.runpytest_inprocess("-s", "-p", "no:cacheprovider"))
    assert shown["exercise_budget"] == "45.0 from env"
    assert shown["deadlock_timeout"] == "0.5 from ini"
    assert shown["exercise_timeout"] == "30.0 from ini"
    assert shown["tamper_check"] == "'off' from ini"
    assert shown["memcached_servers"] == "(('ini', 1),) from ini"  # the ini wins over the environment
    assert shown["memcached_bin"] == "PosixPath('/env/memcached') from env"


@pytest.mark.parametrize(
    ("args", "ini", "env", "message"),
    [
        (["--deadlock-timeout=abc"], None, None,
         "--deadlock-timeout=abc: expected a number of seconds >= 0"),
        ([], "deadlock_timeout = abc", None,
         "deadlock_timeout = abc (ini, tox.ini): expected a number of seconds >= 0"),
        (["--exercise-timeout=-3"], None, None,
         "--exercise-timeout=-3: expected a number of seconds >= 0"),
        ([], "exercise_timeout = 1 minute", None,
         "exercise_timeout = 1 minute (ini, tox.ini): expected a number of seconds >= 0"),
        (["--exercise-budget=-1"], None, None,
         "--exercise-budget=-1: expected a number of seconds >= 0"),
        ([], "exercise_budget = half a minute", None,
         "exercise_budget = half a minute (ini, tox.ini): expected a number of seconds >= 0"),
        ([], None, ("PYTEST_CONCURRENCY_EXERCISE_BUDGET", "30s"),
         "PYTEST_CONCURRENCY_EXERCISE_BUDGET=30s (environment): expected a number of seconds >= 0"),
        (["--tamper-check=loud"], None, None,
         "--tamper-check=loud: expected one of report, enforce, off"),
        ([], "tamper_check = loud", None,
         "tamper_check = loud (ini, tox.ini): expected one of report, enforce, off"),
        ([], "hygiene_scope = some", None,
         "hygiene_scope = some (ini, tox.ini): expected one of exercises, all"),
        (["--impl=nowhere"], None, None,
         "--impl=nowhere: no such folder (*nowhere); expected an existing folder"),
        (["--grade-json=no/such/g.json"], None, None,
         "--grade-json=no/such/g.json: folder */no/such does not exist; "
         "expected a file in an existing folder"),
        (["--memcached-servers=h"], None, None,
         "--memcached-servers=h: 'h' is not HOST:PORT; expected a comma-separated list of HOST:PORT, "
         "e.g. 127.0.0.1:11211"),
        ([], "memcached_servers = h:x", None,
         "memcached_servers = h:x (ini, tox.ini): 'h:x' is not HOST:PORT; expected *"),
        ([], None, ("PYTEST_MEMCACHED_SERVERS", ","),
         "PYTEST_MEMCACHED_SERVERS=, (environment): no server given; expected a comma-separated "
         "list of HOST:PORT, e.g. 127.0.0.1:11211"),
    ],
)
def test_a_bad_plugin_setting_is_a_usage_error_naming_its_source(
    pytester, monkeypatch, args, ini, env, message
):
    pytester.makepyfile(test_nothing="def test_nothing(): pass")
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    if env:
        monkeypatch.setenv(*env)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert len([line for line in result.stderr.lines if line.strip()]) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_options_given_on_the_command_line_are_forwarded_to_isolated_children(pytester):
    """An isolated test's interpreter gets the plugin's options, but not --impl (resolved) or --grade-json."""
    pytester.makepyfile(test_nothing="""
        from pytest_concurrency import _config

        def test_forwarded(request):
            print("forwarded:", _config.forwarded_options(request.config))
    """)
    result = pytester.runpytest_inprocess(
        "-s", "-p", "no:cacheprovider", "--deadlock-timeout", "2", "--grade-json=g.json",
        "--memcached-servers=127.0.0.1:1",
    )
    assert result.ret == 0
    assert "forwarded: ['--deadlock-timeout=2', '--memcached-servers=127.0.0.1:1']\n" in result.stdout.str()


def test_the_grader_finds_the_kit_named_by_the_environment(tmp_path, monkeypatch):
    from pytest_concurrency.grading.supervisor import GradingError, Kit

    monkeypatch.setenv("PYTEST_CONCURRENCY_KIT", str(tmp_path))
    with pytest.raises(GradingError, match=r"from PYTEST_CONCURRENCY_KIT \(environment\)"):
        Kit.find()
    (tmp_path / "exercises").mkdir()
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    assert Kit.find().root == tmp_path.resolve()
    with pytest.raises(GradingError, match=r"from --kit\)"):
        Kit.find(tmp_path / "exercises")  # --kit wins over the environment (and is wrong here)


def test_an_empty_value_counts_as_not_given(demo, monkeypatch):
    demo.makeini("[pytest]\ndemo_seconds =\n")
    monkeypatch.setenv("DEMO_SECONDS", "3.5")
    result = demo.runpytest_inprocess("--demo-seconds=")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["demo seconds: 3.5 from env"])
