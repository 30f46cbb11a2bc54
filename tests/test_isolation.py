"""@pytest.mark.isolated: a fresh interpreter per test, reported in the parent like any test.

Each case builds a small kit with pytester and runs pytest in a subprocess,
as a student would.
"""

from __future__ import annotations

import json

import psutil
import pytest

PYTEST_INI = """
[pytest]
addopts = --import-mode=importlib -p no:randomly
"""

# The exercise's module patches the whole interpreter when imported, and logs where.
PATCHING_MODULE = """
import os, sys
PYTEST_WAS_IMPORTED_FIRST = "pytest" in sys.modules
with open(os.path.join(os.path.dirname(__file__), "..", "..", "imports.log"), "a") as log:
    log.write(os.environ.get("PYTEST_CONCURRENCY_ISOLATED_CHILD", "parent") + "\\n")
from gevent import monkey
monkey.patch_all()
import socket

def socket_module():
    return socket.socket.__module__

def todo():
    raise NotImplementedError("todo: write it (see README)")
"""

ISOLATED_TESTS = """
import pytest
from pytest_concurrency import load_impl

pytestmark = pytest.mark.isolated(timeout=60)
demo = load_impl("demo")

@pytest.mark.points(3)
def test_patched_and_imported_first():
    assert demo.socket_module().startswith("gevent"), demo.socket_module()
    assert not demo.PYTEST_WAS_IMPORTED_FIRST, "pytest was imported before the student's module"

@pytest.mark.points(2)
def test_not_started():
    demo.todo()

def test_fails():
    demo.socket_module()
    assert 1 + 1 == 3, "arithmetic is broken"
"""

PLAIN_TESTS = """
import socket, time
from gevent import monkey

def test_never_patched():
    assert not monkey.is_anything_patched(), monkey.saved
    assert socket.socket.__module__ == "socket"
    assert time.sleep.__module__ == "time"
"""


@pytest.fixture
def kit(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    folder = pytester.mkdir("exercises") / "90_demo"
    folder.mkdir()
    (folder / "demo.py").write_text(PATCHING_MODULE)
    (folder / "test_demo.py").write_text(ISOLATED_TESTS)
    plain = pytester.path / "exercises" / "91_plain"
    plain.mkdir()
    (plain / "test_plain.py").write_text(PLAIN_TESTS)
    return pytester


def grade_of(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    out = pytester.path / "grade.json"
    result = pytester.runpytest_subprocess("exercises", "--grade-json", str(out), *args)
    grade = json.loads(out.read_text(encoding="utf-8"))
    return result, {t["name"].split("::")[-1]: t for t in grade["tests"]}


def test_isolated_tests_run_patched_and_report_in_the_parent(kit: pytest.Pytester) -> None:
    result, tests = grade_of(kit, "-v")
    result.assert_outcomes(passed=2, failed=1)
    assert tests["test_patched_and_imported_first"]["score"] == 3
    assert tests["test_not_started"]["output"] == "not started: todo: write it (see README)"
    assert "arithmetic is broken" in tests["test_fails"]["output"]
    assert tests["test_never_patched"]["status"] == "passed"
    result.stdout.fnmatch_lines(["*test_not_started NOT STARTED*"])
    imports = (kit.path / "imports.log").read_text().split()
    assert imports == ["1", "1", "1"], f"the module was imported here: {imports} (want only children)"


def test_impl_is_honoured_in_the_child(kit: pytest.Pytester) -> None:
    impl = kit.path / "impl" / "90_demo"
    impl.mkdir(parents=True)
    (impl / "demo.py").write_text(PATCHING_MODULE.replace('raise NotImplementedError("todo: write it (see README)")', "return 42"))
    result, tests = grade_of(kit, "--impl", "impl", "-k", "not_started")
    result.assert_outcomes(passed=1)
    assert tests["test_not_started"]["status"] == "passed"


def test_x_k_and_last_failed_work_with_isolated_tests(kit: pytest.Pytester) -> None:
    result = kit.runpytest_subprocess("exercises", "-x", "-k", "fails or never", "-p", "cacheprovider")
    result.assert_outcomes(failed=1)  # -x: the plain test after it never ran
    result = kit.runpytest_subprocess("exercises", "--lf", "-p", "cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and "passed" not in outcomes, outcomes
    result.stdout.fnmatch_lines(["*arithmetic is broken*"])


def test_works_under_xdist(kit: pytest.Pytester) -> None:
    result, tests = grade_of(kit, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=2, failed=1)
    assert tests["test_patched_and_imported_first"]["score"] == 3
    # (Under xdist the output starts with the worker's name: "[gw0] linux -- Python ...".)
    assert "not started: todo" in tests["test_not_started"]["output"]


def test_a_hanging_child_is_stopped_with_its_stack_and_everything_it_started_is_killed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    pytester.makepyfile(test_hang="""
        import subprocess, sys, time, pytest

        @pytest.mark.isolated(timeout=10)
        def test_hangs():
            helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
            with open("helper.pid", "w") as f:
                f.write(str(helper.pid))
            time.sleep(300)
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*did not finish within 10 s*", "*test_hang.py*in test_hangs*"])
    assert result.duration < 60
    helper = int((pytester.path / "helper.pid").read_text())
    assert not psutil.pid_exists(helper) or psutil.Process(helper).status() == psutil.STATUS_ZOMBIE


def test_a_crashing_child_fails_the_test_with_its_exit_status(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    pytester.makepyfile(test_crash="""
        import os, pytest

        @pytest.mark.isolated
        def test_exits():
            print("about to leave", flush=True)
            os._exit(7)

        @pytest.mark.isolated
        def test_after():
            pass
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*exited with status 7*"])


def test_mixed_modules_keep_the_parents_fixtures_in_order(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    pytester.makepyfile(
        test_a="""
            import pytest
            events = []

            @pytest.fixture(scope="module")
            def resource():
                events.append("up")
                yield
                events.append("down")
                print("EVENTS", events)

            def test_one(resource):
                pass

            @pytest.mark.isolated(preload=())
            def test_two():
                pass

            def test_three(resource):
                assert events == ["up"]
        """,
        test_b="""
            def test_four():
                pass
        """,
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*EVENTS ?'up', 'down'?*"])


@pytest.mark.parametrize(
    "marker, problem",
    [
        ("isolated(timeout=-1)", "must be a positive number of seconds, got -1"),
        ("isolated(5)", "takes only timeout= and preload="),
        ("isolated(preload='not a name')", "takes module names"),
    ],
)
def test_bad_marker_arguments_are_named(pytester: pytest.Pytester, marker: str, problem: str) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    pytester.makepyfile(test_bad=f"""
        import pytest

        @pytest.mark.{marker}
        def test_x():
            pass
    """)
    result = pytester.runpytest_subprocess()
    assert problem in result.stdout.str() + result.stderr.str()


def test_using_the_module_at_collection_time_in_the_parent_is_explained(kit: pytest.Pytester) -> None:
    # The parent collects with a stand-in; module-level use of the module is an error that says why.
    (kit.path / "exercises" / "90_demo" / "test_demo.py").write_text(
        ISOLATED_TESTS + "\nSIZES = demo.socket_module()\n"
    )
    result = kit.runpytest_subprocess("exercises/90_demo")
    result.stdout.fnmatch_lines(["*demo is imported only in the fresh interpreter of isolated tests*"])
    assert not (kit.path / "imports.log").exists()
