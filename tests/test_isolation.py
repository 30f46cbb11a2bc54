"""@pytest.mark.isolated: fresh interpreters, reported in the parent like any test.

One interpreter serves the consecutive isolated tests of a module; a hang or a
crash costs the test that caused it, and the tests after it get a new one.

Each case builds a small kit with pytester and runs pytest in a subprocess,
as a student would.
"""

from __future__ import annotations

import json
import sys

import pytest

from pytest_concurrency.hygiene.processes import still_running

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
    assert imports == ["1"], f"the module was imported here: {imports} (want once, in one child)"


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


def test_works_under_xdist_with_one_interpreter_per_worker(kit: pytest.Pytester) -> None:
    result, tests = grade_of(kit, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=2, failed=1)
    assert tests["test_patched_and_imported_first"]["score"] == 3
    # (Under xdist the output starts with the worker's name: "[gw0] linux -- Python ...".)
    assert "not started: todo" in tests["test_not_started"]["output"]
    assert "arithmetic is broken" in tests["test_fails"]["output"]
    imports = (kit.path / "imports.log").read_text().split()
    assert imports in (["1"], ["1", "1"]), f"want one interpreter per worker at most: {imports}"


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
    assert not still_running([helper])


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


BAD_MARKERS = {
    "isolated(timeout=-1)": "must be a positive number of seconds, got -1",
    "isolated(5)": "takes only timeout=, preload= and shared=",
    "isolated(shared=1)": "is True or False, got 1",
    "isolated(preload='not a name')": "takes module names",
}


def test_bad_marker_arguments_are_named(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    for n, marker in enumerate(BAD_MARKERS):
        pytester.makepyfile(**{f"test_bad{n}": f"""
            import pytest

            @pytest.mark.{marker}
            def test_x():
                pass
        """})
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=len(BAD_MARKERS))
    for problem in BAD_MARKERS.values():
        assert problem in result.stdout.str(), problem


def test_using_the_module_at_collection_time_in_the_parent_is_explained(kit: pytest.Pytester) -> None:
    # The parent collects with a stand-in; module-level use of the module is an error that says why.
    (kit.path / "exercises" / "90_demo" / "test_demo.py").write_text(
        ISOLATED_TESTS + "\nSIZES = demo.socket_module()\n"
    )
    result = kit.runpytest_subprocess("exercises/90_demo")
    result.stdout.fnmatch_lines(["*demo is imported only in the fresh interpreter of isolated tests*"])
    assert not (kit.path / "imports.log").exists()


# --------------------------------------------------------------- one interpreter per module

# Every test and the module fixture log "<what> <pid>" to events.log: which interpreter ran what.
SHARED_TESTS = """
import os, pytest

pytestmark = pytest.mark.isolated(timeout=60)

def log(what):
    with open(os.path.join(os.path.dirname(__file__), "events.log"), "a") as f:
        f.write(f"{what} {os.getpid()}\\n")

@pytest.fixture(scope="module")
def resource():
    log("up")
    yield
    log("down")

def test_one(resource):
    log("one")

def test_two(resource):
    log("two")
    BODY_OF_TWO

def test_three(resource):
    log("three")

def test_four(resource):
    log("four")
"""


def events(pytester: pytest.Pytester) -> list[tuple[str, int]]:
    path = pytester.path / "events.log"
    if not path.exists():
        return []
    return [(what, int(pid)) for what, pid in (line.split() for line in path.read_text().splitlines())]


def shared_module(pytester: pytest.Pytester, body_of_two: str = "pass", **extra: str) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    pytester.makepyfile(test_shared=SHARED_TESTS.replace("BODY_OF_TWO", body_of_two), **extra)


def assert_no_child_left(pids: set[int]) -> None:
    alive = still_running(pids)
    assert not alive, f"the isolated interpreter(s) {alive} outlived the run"


def test_the_isolated_tests_of_a_module_share_one_interpreter_and_its_fixtures(
    pytester: pytest.Pytester,
) -> None:
    shared_module(pytester)
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=4)
    log = events(pytester)
    assert [what for what, _ in log] == ["up", "one", "two", "three", "four", "down"], log
    pids = {pid for _, pid in log}
    assert len(pids) == 1, f"want one interpreter for the module, got {log}"
    assert_no_child_left(pids)


def test_each_report_reaches_the_parent_as_its_test_ends(pytester: pytest.Pytester) -> None:
    # test_two waits until the parent has logged test_one's result: only possible if it came early.
    shared_module(pytester, body_of_two="""
    import time
    deadline = time.monotonic() + 40
    while not os.path.exists(os.path.join(os.path.dirname(__file__), "one.reported")):
        assert time.monotonic() < deadline, "test_one's report never reached the parent"
        time.sleep(0.05)
    """, conftest="""
        import os

        def pytest_runtest_logreport(report):
            in_child = os.environ.get("PYTEST_CONCURRENCY_ISOLATED_CHILD") == "1"
            if not in_child and report.when == "call" and report.nodeid.endswith("test_one"):
                open(os.path.join(os.path.dirname(__file__), "one.reported"), "w").close()
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=4)
    assert len({pid for _, pid in events(pytester)}) == 1


def test_shared_false_gives_a_test_an_interpreter_of_its_own(pytester: pytest.Pytester) -> None:
    shared_module(pytester)
    source = (pytester.path / "test_shared.py").read_text()
    (pytester.path / "test_shared.py").write_text(
        source.replace("def test_two(", "@pytest.mark.isolated(timeout=60, shared=False)\ndef test_two(")
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=4)
    log = events(pytester)
    pid = {what: pid for what, pid in log if what in ("one", "two", "three", "four")}
    assert pid["one"] != pid["two"] != pid["three"] and pid["three"] == pid["four"], log
    # Each interpreter set the module fixture up and tore it down.
    assert [what for what, _ in log].count("up") == 3 == [what for what, _ in log].count("down"), log


def test_a_hang_in_the_middle_costs_that_test_and_the_rest_run_in_a_new_interpreter(
    pytester: pytest.Pytester,
) -> None:
    shared_module(pytester, body_of_two="""
    import subprocess, sys, time
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open("helper.pid", "w") as f:
        f.write(str(helper.pid))
    time.sleep(300)""")
    source = (pytester.path / "test_shared.py").read_text()
    (pytester.path / "test_shared.py").write_text(
        source.replace("def test_two(", "@pytest.mark.isolated(timeout=8)\ndef test_two(")
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*test_two*", "*did not finish within 8 s*", "*test_shared.py*in test_two*",
    ])
    assert result.duration < 100
    log = events(pytester)
    pid = dict(log)
    assert pid["one"] == pid["two"] != pid["three"] == pid["four"], log
    assert [what for what, _ in log] == ["up", "one", "two", "up", "three", "four", "down"], log
    helper = int((pytester.path / "helper.pid").read_text())
    assert_no_child_left({helper, pid["one"], pid["three"]})


def test_a_crash_in_the_middle_fails_that_test_and_the_rest_run_in_a_new_interpreter(
    pytester: pytest.Pytester,
) -> None:
    shared_module(pytester, body_of_two="os._exit(7)")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_two*", "*exited with status 7*"])
    log = events(pytester)
    pid = dict(log)
    assert pid["one"] == pid["two"] != pid["three"] == pid["four"], log
    assert_no_child_left({pid["one"], pid["three"]})


def test_exitfirst_stops_after_the_failure_and_ends_the_interpreter(pytester: pytest.Pytester) -> None:
    shared_module(pytester, body_of_two="assert False, 'two is wrong'")
    result = pytester.runpytest_subprocess("-x")
    result.assert_outcomes(passed=1, failed=1)
    log = events(pytester)
    assert [what for what, _ in log] == ["up", "one", "two", "down"], log
    assert_no_child_left({pid for _, pid in log})


def test_k_and_last_failed_run_only_the_selected_tests_in_one_interpreter(pytester: pytest.Pytester) -> None:
    shared_module(pytester, body_of_two="assert False, 'two is wrong'")
    result = pytester.runpytest_subprocess("-k", "one or four", "-p", "cacheprovider")
    result.assert_outcomes(passed=2)
    log = events(pytester)
    assert [what for what, _ in log] == ["up", "one", "four", "down"], log
    assert len({pid for _, pid in log}) == 1

    (pytester.path / "events.log").unlink()
    result = pytester.runpytest_subprocess("-p", "cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    (pytester.path / "events.log").unlink()
    result = pytester.runpytest_subprocess("--lf", "-p", "cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*two is wrong*"])
    assert [what for what, _ in events(pytester)] == ["up", "two", "down"]


def test_junit_xml_holds_every_isolated_test(pytester: pytest.Pytester) -> None:
    shared_module(pytester, body_of_two="assert False, 'two is wrong'")
    result = pytester.runpytest_subprocess("--junitxml=junit.xml")
    result.assert_outcomes(passed=3, failed=1)
    xml = (pytester.path / "junit.xml").read_text()
    assert xml.count("<testcase ") == 4 and xml.count("<failure ") == 1 and "two is wrong" in xml


# ------------------------------------------------ monkey patching in a non-isolated exercise

PATCHES_AT_IMPORT = """
from gevent import monkey
monkey.patch_all()

def answer():
    return 42
"""

PATCHING_EXERCISE_TESTS = """
from pytest_concurrency import load_impl

tasks = load_impl("tasks")

def test_answer():
    assert tasks.answer() == 42

def test_other():
    assert tasks.answer() == 42
"""

PLAIN_AFTER_PATCHING = PLAIN_TESTS + """
import threading

def test_threads_still_work():
    box = []
    worker = threading.Thread(target=lambda: box.append(threading.get_ident()))
    worker.start()
    worker.join(10)
    assert box and box[0] != threading.get_ident(), "the thread ran in the main thread"
    assert threading.current_thread() is threading.main_thread()
"""


def patching_kit(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    folder = pytester.mkdir("exercises") / "16_tasks"
    folder.mkdir()
    (folder / "tasks.py").write_text(PATCHES_AT_IMPORT)
    (folder / "test_tasks.py").write_text(tests)
    plain = pytester.path / "exercises" / "17_plain"
    plain.mkdir()
    (plain / "test_plain.py").write_text(PLAIN_AFTER_PATCHING)


@pytest.mark.parametrize("xdist", [(), ("-p", "xdist", "-n", "2")], ids=["plain", "xdist"])
def test_an_exercise_module_that_monkey_patches_fails_its_exercise_only(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    patching_kit(pytester, PATCHING_EXERCISE_TESTS)
    out = pytester.path / "grade.json"
    result = pytester.runpytest_subprocess("exercises", "--grade-json", str(out), *xdist)
    result.assert_outcomes(passed=2, failed=2)
    grade = {t["name"].split("::")[-1]: t for t in json.loads(out.read_text())["tests"]}
    for name in ("test_answer", "test_other"):
        assert grade[name]["status"] == "failed"
        output = grade[name]["output"]
        assert "importing exercises/16_tasks/test_tasks.py (or tasks.py, which it loads)" in output
        assert "called gevent.monkey.patch_all()" in output
        assert "this exercise must not monkey-patch" in output
    assert grade["test_never_patched"]["status"] == "passed", grade["test_never_patched"]["output"]
    assert grade["test_threads_still_work"]["status"] == "passed", grade["test_threads_still_work"]["output"]


def test_a_test_that_monkey_patches_while_it_runs_fails_and_the_rest_of_its_exercise_too(
    pytester: pytest.Pytester,
) -> None:
    patching_kit(pytester, """
        def test_patches():
            from gevent import monkey
            monkey.patch_all()

        def test_after():
            pass
    """.replace("\n        ", "\n"))
    (pytester.path / "exercises" / "16_tasks" / "tasks.py").write_text("")
    result = pytester.runpytest_subprocess("exercises", "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*test_patches FAILED*", "*test_after FAILED*", "*test_never_patched PASSED*",
        "*test_threads_still_work PASSED*",
    ])
    result.stdout.fnmatch_lines(["*running exercises/16_tasks/test_tasks.py::test_patches*must not monkey-patch*"])


def test_unpatch_gevent_restores_a_working_interpreter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(script="""
        import concurrent.futures, logging, socket, subprocess, sys, threading, time
        main, ident, sleep = threading.main_thread(), threading.get_ident(), time.sleep
        from gevent import monkey
        monkey.patch_all()
        from pytest_concurrency.isolation.unpatch import gevent_patched, unpatch_gevent
        assert gevent_patched()
        assert "socket" in unpatch_gevent() and not gevent_patched()
        assert time.sleep is sleep and socket.socket.__module__ == "socket"
        assert threading.get_ident() == ident and threading.current_thread() is main
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            assert list(pool.map(abs, [-1, 2])) == [1, 2]
        assert subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True).stdout == b"1\\n"
        logging.getLogger().warning("still logging")
        threading.Thread(target=time.sleep, args=(0.2,)).start()   # the exit waits for it, and ends
        print("ok")
    """)
    result = pytester.run(sys.executable, "script.py", timeout=60)
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["ok"])


def test_a_module_that_hangs_on_import_costs_one_timeout_not_one_per_test(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=PYTEST_INI)
    folder = pytester.mkdir("exercises") / "93_slow"
    folder.mkdir()
    (folder / "slow.py").write_text("import time\ntime.sleep(300)\n")
    (folder / "test_slow.py").write_text(
        "import pytest\nfrom pytest_concurrency import load_impl\n\n"
        "pytestmark = pytest.mark.isolated(timeout=8)\nslow = load_impl('slow')\n\n"
        + "".join(f"def test_{n}():\n    slow.anything\n\n" for n in ("a", "b", "c"))
    )
    result = pytester.runpytest_subprocess("exercises", "-p", "no:randomly")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*did not finish within 8 s*", "*slow.py*"])
    # Before the short summary: with CI set, pytest repeats each message there in full.
    reports = result.stdout.str().split("short test summary info")[0]
    assert reports.count("ended before it ran any test") == 2
    assert result.duration < 60


def test_a_module_that_loops_on_import_is_broken_after_the_import_limit(pytester: pytest.Pytester) -> None:
    """The isolated interpreter's preload has load_impl's limit and words, not the test's 60 s."""
    pytester.makefile(".ini", pytest=PYTEST_INI)
    folder = pytester.mkdir("exercises") / "94_loop"
    folder.mkdir()
    (folder / "loop.py").write_text("import gevent\nwhile True:\n    pass\n")
    (folder / "test_loop.py").write_text(
        "import pytest\nfrom pytest_concurrency import load_impl\n\n"
        "pytestmark = pytest.mark.isolated(timeout=60)\nloop = load_impl('loop')\n\n"
        + "".join(f"def test_{n}():\n    loop.anything\n\n" for n in ("a", "b", "c"))
    )
    result = pytester.runpytest_subprocess("exercises", "-p", "no:randomly", "--import-timeout", "2",
                                           "--grade-json", "grade.json")
    assert result.parseoutcomes() == {"broken": 3}, result.stdout.str()[-3000:]
    line = "importing loop.py did not finish in 2 s; it was running line "
    outputs = [t["output"] for t in json.loads((pytester.path / "grade.json").read_text())["tests"]]
    assert len(outputs) == 3 and all(
        o in (line + "2: `while True:`", line + "3: `pass`") for o in outputs), outputs
    result.stdout.fnmatch_lines(["94_loop*broken", f"94_loop: {line}*"])
    assert result.duration < 30
