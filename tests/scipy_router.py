"""pytest plugin: run SciPy's own ``test_ivp`` against ``chebpan``'s PAN method.

Load it with ``-p scipy_router`` (this folder and the repository root on
``PYTHONPATH``) and run the *installed* SciPy test module, for example::

    PYTHONPATH=tests:. python -m pytest -p scipy_router -m "not slow" \
        --pyargs scipy.integrate._ivp.tests.test_ivp

Every test in that module calls the module-global name ``solve_ivp``.  An
autouse fixture replaces that name, for the duration of each test, with a
router that calls ``chebpan.solve_ivp(..., method="PAN")``.  Whatever
``method`` the test asks for (a name such as ``"RK45"`` or ``"LSODA"``, an
``OdeSolver`` class, or the default) is replaced by ``"PAN"``; every other
argument and option is passed on unchanged, positionally bound exactly as
:func:`scipy.integrate.solve_ivp` would bind it.

Nothing of SciPy's test code is copied here.  The plugin also supplies the
markers and the ``num_parallel_threads`` fixture that SciPy's ``conftest.py``
provides, for runs where that conftest is not picked up (a fixture of the same
name in SciPy's conftest takes precedence over this one).

Each routed test records how many calls went to chebpan as the user property
``chebpan_routed_calls`` (it shows in ``--junitxml``), so a driver can check that
the routing took effect.  Two options help a driver (``tests/test_scipy_suite.py``):

``--router-report=PATH``
    Append one JSON line per test to PATH as soon as the test is done (and one
    when it starts), with its outcome, the failing source line, the one-line
    reason and the routed-call count, so a run killed on a time limit still
    tells which tests finished and which one was running.
``--router-timeout=SECONDS``
    Interrupt a test of the routed module that runs longer (SIGALRM, main
    thread, POSIX only; code that does not return to the interpreter, such as
    a long compiled kernel, is interrupted when it returns).
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import threading

import pytest
import scipy.integrate

# Imported when the plugin loads, before pytest's collection puts the folder
# holding scipy (site-packages) first on sys.path: the chebpan under test is
# then the one on PYTHONPATH, not an installed copy.
import chebpan

#: Module whose ``solve_ivp`` is replaced.
TARGET_MODULE = "scipy.integrate._ivp.tests.test_ivp"
#: The method every routed call uses.
ROUTED_METHOD = "PAN"

_SCIPY_SIGNATURE = inspect.signature(scipy.integrate.solve_ivp)
_TARGET_FILE = os.path.join(
    os.path.dirname(scipy.integrate.__file__), "_ivp", "tests", "test_ivp.py")


def make_router(counter=None):
    """Return a ``solve_ivp`` look-alike that sends every call to chebpan's PAN.

    ``counter`` (a list) gets one entry, the requested method, per call.
    """
    def solve_ivp(*args, **kwargs):
        # Bind like scipy does, so that positional use of ``method``,
        # ``t_eval``, ... and wrong calls behave the same (a TypeError here is
        # the TypeError scipy's own signature would raise).
        bound = _SCIPY_SIGNATURE.bind(*args, **kwargs)
        arguments = dict(bound.arguments)
        options = arguments.pop("options", {})
        requested = arguments.pop("method", "RK45")
        if counter is not None:
            counter.append(requested)
        arguments["method"] = ROUTED_METHOD
        return chebpan.solve_ivp(**arguments, **options)

    solve_ivp.__doc__ = (
        "scipy.integrate.solve_ivp routed to chebpan.solve_ivp(method='PAN').")
    return solve_ivp


def _is_target(module) -> bool:
    if module is None:
        return False
    if getattr(module, "__name__", None) == TARGET_MODULE:
        return True
    path = getattr(module, "__file__", None)
    return bool(path) and os.path.realpath(path) == os.path.realpath(_TARGET_FILE)


class RouterTimeout(Exception):
    """Raised in a routed test that exceeds ``--router-timeout``."""


def pytest_addoption(parser):
    group = parser.getgroup("scipy_router", "routing of scipy's test_ivp to chebpan")
    group.addoption("--router-report", default=None, metavar="PATH",
                    help="append one JSON line per test (outcome, reason) to PATH")
    group.addoption("--router-timeout", type=float, default=0.0, metavar="SECONDS",
                    help="interrupt a routed test after SECONDS (0: never)")


def pytest_configure(config):
    # What scipy/conftest.py registers; harmless when it is loaded as well.
    for line in (
        "slow: Tests that are very slow.",
        "xslow: mark test as extremely slow (not run unless explicitly requested)",
        "thread_unsafe: mark the test function as single-threaded",
        "fail_slow: mark a test for a non-default timeout failure",
        "parallel_threads_limit(n): run the given test function in parallel "
        "using `n` threads.",
        "iterations(n): run the given test function `n` times in each thread",
        "timeout: mark a test for a non-default timeout",
        "array_api_backends: test iterates on all array API backends",
    ):
        config.addinivalue_line("markers", line)
    path = config.getoption("router_report", None)
    if path:
        config.pluginmanager.register(_Reporter(path), "scipy_router_reporter")


@pytest.fixture
def num_parallel_threads():
    """Fallback for scipy's conftest fixture: tests run in one thread."""
    return 1


@pytest.fixture(autouse=True)
def _route_solve_ivp_to_chebpan(request, monkeypatch):
    module = getattr(request, "module", None)
    if not _is_target(module) or not hasattr(module, "solve_ivp"):
        yield
        return
    calls = []
    monkeypatch.setattr(module, "solve_ivp", make_router(calls))
    try:
        yield
    finally:
        request.node.user_properties.append(("chebpan_routed_calls", len(calls)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    limit = item.config.getoption("router_timeout", 0.0) or 0.0
    if (limit <= 0 or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()
            or not _is_target(getattr(item, "module", None))):
        return (yield)

    def on_alarm(signum, frame):
        raise RouterTimeout(f"test exceeded --router-timeout={limit:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------- JSON-lines report


class _Reporter:
    """Writes ``--router-report``: a "start" line and a "finish" line per test."""

    def __init__(self, path):
        self.path = path
        self.records = {}

    def _write(self, record):
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def pytest_runtest_logstart(self, nodeid, location):
        self._write({"event": "start", "nodeid": nodeid})

    def pytest_runtest_logreport(self, report):
        rec = self.records.setdefault(report.nodeid, {
            "event": "finish", "nodeid": report.nodeid, "outcome": "passed",
            "when": "", "crash": "", "failing_line": "", "duration": 0.0,
            "routed_calls": None})
        rec["duration"] += report.duration
        for name, value in report.user_properties:
            if name == "chebpan_routed_calls":
                rec["routed_calls"] = value
        if rec["outcome"] == "passed" and not report.passed:
            if report.skipped:
                rec["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
            else:
                rec["outcome"] = "failed" if report.when == "call" else "error"
            rec["when"] = report.when
            rec["crash"] = _crash(report)
            rec["failing_line"] = _failing_line(report.longreprtext)
        if report.when == "teardown":
            self._write(self.records.pop(report.nodeid))


def _failing_line(text):
    """The first source line pytest marks with '>' (the test's own failing line)."""
    for line in text.splitlines():
        if line.startswith(">"):
            return line[1:].strip()
    return ""


def _crash(report):
    """One line: the exception (or assertion) that ended the test."""
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message.strip().splitlines()[0]
    lines = [ln for ln in report.longreprtext.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""
