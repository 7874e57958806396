"""Parity of chebpan's argument checks with ``scipy.integrate.solve_ivp``.

Every row of ``CASES`` is one bad (or borderline) input.  The expected
outcome is captured from the installed SciPy at test time (exception type
and exact message, or the list of ``UserWarning`` messages), and compared
with

* ``chebpan_front_end``: the chebpan validators chained in SciPy's order
  (a stand-in for the front end), and
* ``chebpan.solve_ivp`` with ``method='PAN'``, once it exists.

Rows with ``own=...`` are the places where chebpan deliberately does better
than SciPy (SciPy hangs, drops output or fails with a NumPy error); there
chebpan's own message is asserted.
"""

import inspect
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pytest
import scipy.integrate

import chebpan
from chebpan._frontend import validation as v
from chebpan._frontend.arguments import wrap_args, wrap_jac
from chebpan._rhs.checks import check_fun_output

T_SPAN = (0.0, 1.0)
Y0 = [1.0, 2.0]

# Options that scipy's RK45 understands (besides ``vectorized``).
RK45_OPTIONS = ("max_step", "rtol", "atol", "first_step")


def rhs(t, y, *args):
    """Exponential decay; accepts (and ignores) extra ``args``."""
    return -y


def rhs_wrong_shape(t, y, *args):
    return np.zeros(3)


def chebpan_front_end(fun, t_span, y0, method="RK45", t_eval=None,
                      dense_output=False, events=None, vectorized=False,
                      args=None, **options):
    """Run chebpan's validators in the order SciPy makes its checks."""
    v.validate_method(method)
    t0, tf = v.validate_t_span(t_span)
    fun = wrap_args(fun, args)
    if "jac" in options:
        options["jac"] = wrap_jac(options["jac"], args)
    t_eval = v.validate_t_eval(t_eval, t0, tf)
    # What SciPy's solver constructor does (RK45's option set).
    known = {k: options.pop(k) for k in RK45_OPTIONS if k in options}
    v.warn_extraneous(options)
    y0 = v.validate_y0(y0)
    v.validate_max_step(known.get("max_step", np.inf))
    v.validate_tol(known.get("rtol", 1e-3), known.get("atol", 1e-6), y0.size)
    check_fun_output(fun(t0, y0), y0.shape, dtype=y0.dtype)
    if known.get("first_step") is not None:
        v.validate_first_step(known["first_step"], t0, tf)


# --------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a call did: the exception (type and message) and UserWarnings."""

    exc_type: Optional[type] = None
    message: Optional[str] = None
    warnings: list = field(default_factory=list)


def _user_warnings(records):
    return [str(w.message) for w in records
            if issubclass(w.category, UserWarning)]


def run_and_capture(call):
    """Call ``call()`` and record what it raised and warned."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - recording any failure
            return Outcome(type(exc), str(exc), _user_warnings(rec))
    return Outcome(warnings=_user_warnings(rec))


def assert_outcome(call, expected):
    """Check that ``call()`` raises/warns exactly as ``expected`` says.

    Warnings must point into this file (the user's code), not into chebpan.
    """
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        if expected.exc_type is None:
            call()
        else:
            with pytest.raises(expected.exc_type,
                               match=re.escape(expected.message)) as excinfo:
                call()
            assert type(excinfo.value) is expected.exc_type
            assert str(excinfo.value) == expected.message
    assert _user_warnings(rec) == expected.warnings
    for w in rec:
        if issubclass(w.category, UserWarning):
            assert w.filename == __file__, (w.filename, str(w.message))


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

def _with_pan(scipy_outcome):
    """SciPy's bad-method message with chebpan's 'PAN' added to the list."""
    tail = "} or OdeSolver class."
    assert scipy_outcome.message.endswith(tail)
    message = (scipy_outcome.message[:-len(tail)]
               + ", 'PAN': <chebpan PAN solver>" + tail)
    return Outcome(ValueError, message, scipy_outcome.warnings)


@dataclass
class Case:
    """One input and how chebpan must react to it.

    Parameters
    ----------
    id : str
        Test id.
    kwargs : dict
        Keyword arguments for ``solve_ivp``; ``fun``, ``t_span`` and ``y0``
        default to ``rhs``, ``T_SPAN`` and ``Y0``.
    scipy_method : str
        Method used for the SciPy call (and the validator chain) unless
        ``kwargs`` has ``method``.
    own : Outcome or None
        chebpan's own outcome where it deliberately differs from SciPy;
        None means parity with SciPy.
    derive : callable or None
        Maps SciPy's outcome to chebpan's (e.g. the method list with 'PAN').
    call_scipy : bool
        False where SciPy hangs or silently misbehaves.
    """

    id: str
    kwargs: dict
    scipy_method: str = "RK45"
    own: Optional[Outcome] = None
    derive: Optional[Callable] = None
    call_scipy: bool = True

    def full_kwargs(self, method):
        kw = {"fun": rhs, "t_span": T_SPAN, "y0": Y0, "method": method}
        kw.update(self.kwargs)
        return kw


def _own(exc_type, message, warns=()):
    return Outcome(exc_type, message, list(warns))


CASES = [
    # t_span
    Case("t_span-3-items", {"t_span": (0, 1, 2)}),
    Case("t_span-1-item", {"t_span": (0,)}),
    Case("t_span-complex", {"t_span": (0, 1j)}),
    Case("t_span-not-iterable", {"t_span": 1.0}),
    Case("t_span-strings-ok", {"t_span": ("0", "1")}),
    Case("t_span-nan", {"t_span": (0, np.nan)}, call_scipy=False,
         own=_own(ValueError, "`t_span` must not contain NaN.")),
    # y0
    Case("y0-2d", {"y0": [[1.0, 2.0]]}),
    Case("y0-scalar", {"y0": 1.0}),
    Case("y0-nan", {"y0": [1.0, np.nan]}),
    Case("y0-inf", {"y0": [np.inf, 1.0]}),
    Case("y0-2d-and-nan", {"y0": [[np.nan]]}),
    Case("y0-string", {"y0": ["a"]}),
    # rtol / atol
    Case("rtol-too-small", {"rtol": 1e-20}),
    Case("rtol-negative", {"rtol": -1.0}),
    Case("rtol-list-ok", {"rtol": [1e-3, 1e-4]}),
    Case("rtol-list-too-small", {"rtol": [1e-1, 1e-16]}),
    Case("rtol-wrong-shape", {"rtol": [1e-3, 1e-3, 1e-3]},
         own=_own(ValueError, "`rtol` has wrong shape.")),
    Case("rtol-nan", {"rtol": np.nan}, call_scipy=False,
         own=_own(ValueError, "`rtol` must not contain NaN.")),
    Case("atol-wrong-shape", {"atol": [1e-6, 1e-6, 1e-6]}),
    Case("atol-size-1-wrong-shape", {"atol": [1e-6]}),
    Case("atol-negative", {"atol": -1.0}),
    Case("atol-negative-element", {"atol": [1e-6, -1e-6]}),
    Case("atol-zero-ok", {"atol": 0.0}),
    Case("atol-nan", {"atol": np.nan}, call_scipy=False,
         own=_own(ValueError, "`atol` must be positive.")),
    Case("rtol-too-small-then-atol-shape", {"rtol": 1e-20, "atol": [1, 2, 3]}),
    Case("atol-shape-before-rtol-shape", {"rtol": [1e-3] * 3, "atol": [1e-6] * 3}),
    # first_step / max_step
    Case("first_step-negative", {"first_step": -1.0}),
    Case("first_step-zero", {"first_step": 0.0}),
    Case("first_step-too-large", {"first_step": 5.0}),
    Case("first_step-too-large-backward", {"t_span": (1, 0), "first_step": 1.5}),
    Case("first_step-string", {"first_step": "0.1"}),
    Case("first_step-nan", {"first_step": np.nan}, call_scipy=False,
         own=_own(ValueError, "`first_step` must be positive.")),
    Case("max_step-zero", {"max_step": 0.0}),
    Case("max_step-negative", {"max_step": -1.0}),
    Case("max_step-nan", {"max_step": np.nan}, call_scipy=False,
         own=_own(ValueError, "`max_step` must be positive.")),
    Case("max_step-before-atol", {"max_step": 0.0, "atol": -1.0}),
    Case("atol-before-first_step", {"atol": -1.0, "first_step": -1.0}),
    # t_eval
    Case("t_eval-2d", {"t_eval": [[0.0, 0.5]]}),
    Case("t_eval-scalar", {"t_eval": 0.5}),
    Case("t_eval-out-of-span", {"t_eval": [0.0, 1.5]}),
    Case("t_eval-out-of-span-backward", {"t_span": (1, 0), "t_eval": [1.5, 0.0]}),
    Case("t_eval-unsorted", {"t_eval": [0.0, 0.7, 0.5]}),
    Case("t_eval-duplicates", {"t_eval": [0.0, 0.5, 0.5, 1.0]}),
    Case("t_eval-backward-increasing", {"t_span": (1, 0), "t_eval": [0.0, 0.5, 1.0]}),
    Case("t_eval-backward-duplicates", {"t_span": (1, 0), "t_eval": [1, 1, 0]}),
    Case("t_eval-backward-ok", {"t_span": (1, 0), "t_eval": [1.0, 0.5, 0.0]}),
    Case("t_eval-out-of-span-before-unsorted", {"t_eval": [0.5, 2.0, 0.1]}),
    Case("t_eval-nan", {"t_eval": [0.0, np.nan, 1.0]}, call_scipy=False,
         own=_own(ValueError, "Values in `t_eval` are not within `t_span`.")),
    # args
    Case("args-int", {"args": 1}),
    Case("args-float", {"args": 1.5}),
    Case("args-numpy-scalar", {"args": np.float64(1.5)}),  # str != repr
    Case("args-list-ok", {"args": [1, 2]}),
    Case("args-before-t_eval", {"args": 1, "t_eval": [[0.0]]}),
    Case("t_span-before-args", {"t_span": (0,), "args": 1}),
    # options
    Case("unknown-options", {"foo": 1, "bar": 2}),
    Case("unknown-option-before-y0", {"foo": 1, "y0": [[1.0]]}),
    # method
    Case("method-unknown", {"method": "rk45"}, derive=_with_pan),
    Case("method-class-ok", {"method": scipy.integrate.RK45}),
    Case("method-instance", {"method": scipy.integrate.RK45(
        rhs, 0.0, np.array(Y0), 1.0)}, derive=_with_pan),
    Case("method-unhashable", {"method": []}),
    Case("method-before-t_span", {"method": "foo", "t_span": (0, 1, 2)},
         derive=_with_pan),
    # fun output
    Case("fun-output-shape", {"fun": rhs_wrong_shape},
         own=_own(ValueError,
                  "`fun` returned an array of shape (3,); expected (2,).")),
]

# Where chebpan's own outcome differs but SciPy still raises, the exception
# type must agree (only the message is better).
_SAME_TYPE_AS_SCIPY = {"rtol-wrong-shape", "fun-output-shape"}


def expected_outcome(case):
    """chebpan's expected outcome for ``case``, SciPy's where possible."""
    if case.own is not None:
        if case.call_scipy and case.id in _SAME_TYPE_AS_SCIPY:
            scipy_out = run_and_capture(lambda: scipy.integrate.solve_ivp(
                **case.full_kwargs(case.scipy_method)))
            assert scipy_out.exc_type is case.own.exc_type, scipy_out
        return case.own
    scipy_out = run_and_capture(lambda: scipy.integrate.solve_ivp(
        **case.full_kwargs(case.scipy_method)))
    return case.derive(scipy_out) if case.derive else scipy_out


def _ids(cases):
    return [c.id for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_validators_match_scipy(case):
    expected = expected_outcome(case)
    assert_outcome(lambda: chebpan_front_end(
        **case.full_kwargs(case.scipy_method)), expected)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_solve_ivp_matches_scipy(case):
    """PAN keeps scipy's contract, a 2-D ``y0`` included (batches: solve_ivp_batch)."""
    expected = expected_outcome(case)
    assert_outcome(lambda: chebpan.solve_ivp(**case.full_kwargs("PAN")),
                   expected)


def test_table_covers_parity_and_own_cases():
    # Guard against a table edit that turns every row into an "own" row.
    assert sum(c.own is None for c in CASES) > 40
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------
# Returned values of the individual validators
# --------------------------------------------------------------------------

def test_t_span_returns_floats():
    t0, tf = v.validate_t_span(np.array([0, 3]))
    assert (t0, tf) == (0.0, 3.0)
    assert type(t0) is float and type(tf) is float
    assert v.validate_t_span(("1", np.inf)) == (1.0, np.inf)


@pytest.mark.parametrize("y0, dtype", [
    ([1, 2], np.float64),
    (np.array([1, 2], dtype=np.float32), np.float64),
    ([True, False], np.float64),
    ([1 + 2j, 3], np.complex128),
    (np.array([1], dtype=np.complex64), np.complex128),
    ([], np.float64),
])
def test_y0_dtype(y0, dtype):
    out = v.validate_y0(y0)
    assert out.dtype == dtype
    assert out.ndim == 1


def test_y0_complex_unsupported_matches_radau():
    expected = run_and_capture(lambda: scipy.integrate.solve_ivp(
        rhs, T_SPAN, [1j, 1.0], method="Radau"))
    assert expected.exc_type is ValueError
    with pytest.raises(ValueError, match=re.escape(expected.message)):
        v.validate_y0([1j, 1.0], support_complex=False)


@pytest.mark.parametrize("rtol", [1e-20, -1.0, [1e-1, 1e-16], 1e-3,
                                  [1e-3, 1e-4]])
def test_rtol_clipping_matches_scipy_solver(rtol):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        solver = scipy.integrate.RK45(rhs, 0.0, np.array(Y0), 1.0, rtol=rtol)
        got, _ = v.validate_tol(rtol, 1e-6, 2)
    np.testing.assert_array_equal(got, solver.rtol)


def test_tol_return_types():
    rtol, atol = v.validate_tol(1e-3, 1, 2)
    assert type(rtol) is float and type(atol) is float
    rtol, atol = v.validate_tol([1e-3, 1e-4], [1, 0], 2)
    assert rtol.dtype == np.float64 and rtol.shape == (2,)
    assert atol.dtype == np.float64 and atol.shape == (2,)
    # A size-1 rtol broadcasts in SciPy; we return it as a scalar.
    rtol, _ = v.validate_tol(np.array([[1e-3]]), 1e-6, 3)
    assert rtol == 1e-3


def _tol_outcome(rtol, atol):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = v.validate_tol(rtol, atol, 3)
        except ValueError as error:
            result = str(error)
    return repr(result), [str(w.message) for w in caught]


@pytest.mark.parametrize("rtol, atol", [
    (1e-3, 1e-6), (1, 0), (0.0, 1e-9), (1e-20, 0.0), (-1e-3, 1e-6), (5, 7),
    (1e-3, -1.0), (1e-3, float("nan")), (float("nan"), 1e-6), (float("inf"), 1.0),
    (1e-3, float("inf")), (float("nan"), -1.0)])
def test_tol_of_python_numbers_as_of_arrays(rtol, atol):
    # Two Python numbers take a path without arrays: the same values, warnings and
    # errors as NumPy scalars, which take the array checks.
    assert _tol_outcome(rtol, atol) == _tol_outcome(np.float64(rtol), np.float64(atol))


def _caller_line():
    """Line number of the line after the caller's current line."""
    return inspect.currentframe().f_back.f_lineno + 1


def test_tol_warning_points_at_caller():
    # The first frame outside chebpan is the caller (the end-to-end chain through
    # chebpan.solve_ivp is checked by test_validators_match_scipy).
    with pytest.warns(UserWarning, match="too small") as rec:
        line = _caller_line()
        v.validate_tol(1e-20, 1e-6, 1)
    assert (rec[0].filename, rec[0].lineno) == (__file__, line)


def test_extraneous_warning_points_at_caller_and_empty_is_silent():
    with pytest.warns(UserWarning) as rec:
        line = _caller_line()
        v.warn_extraneous({"foo": 1})
    assert str(rec[0].message) == (
        "The following arguments have no effect for a chosen solver: `foo`.")
    assert (rec[0].filename, rec[0].lineno) == (__file__, line)
    with pytest.warns(UserWarning) as rec:
        line = _caller_line()
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], foo=1)
    assert (rec[0].filename, rec[0].lineno) == (__file__, line)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.warn_extraneous({})


def test_first_and_max_step_return_floats():
    assert v.validate_first_step(1, 0.0, 2.0) == 1.0
    assert v.validate_first_step(2.0, 2.0, 0.0) == 2.0  # backward, == bound
    assert v.validate_first_step(1e300, 0.0, np.inf) == 1e300
    assert v.validate_max_step(np.inf) == np.inf
    assert type(v.validate_max_step(2)) is float


def test_t_eval_keeps_dtype_and_order():
    assert v.validate_t_eval(None, 0.0, 1.0) is None
    out = v.validate_t_eval([0, 1, 2], 0.0, 2.0)
    assert out.dtype == np.array([0, 1, 2]).dtype
    out = v.validate_t_eval([2.0, 1.0], 2.0, 0.0)
    np.testing.assert_array_equal(out, [2.0, 1.0])
    assert v.validate_t_eval([], 0.0, 1.0).shape == (0,)
    # Zero-length span: order is not checked, duplicates pass (as in SciPy).
    np.testing.assert_array_equal(v.validate_t_eval([4, 4], 4.0, 4.0), [4, 4])


def test_t_eval_zero_span_matches_scipy():
    expected = run_and_capture(lambda: scipy.integrate.solve_ivp(
        rhs, (4, 4), Y0, t_eval=[4, 4]))
    assert expected.exc_type is None
    assert_outcome(lambda: chebpan_front_end(rhs, (4, 4), Y0, t_eval=[4, 4]),
                   expected)


@pytest.mark.parametrize("method, kind", [
    ("PAN", "PAN"),
    *[(name, "scipy") for name in ("RK23", "RK45", "DOP853", "Radau", "BDF",
                                   "LSODA")],
    (scipy.integrate.RK45, "scipy"),
    (scipy.integrate.OdeSolver, "scipy"),
])
def test_method_kind(method, kind):
    assert v.validate_method(method) == kind


@pytest.mark.parametrize("method", ["pan", "rk45", scipy.integrate.RK45(
    rhs, 0.0, np.array(Y0), 1.0), int, None])
def test_method_rejected(method):
    with pytest.raises(ValueError, match=r"^`method` must be one of \{"):
        v.validate_method(method)


def test_scipy_method_table_matches_scipy_message():
    out = run_and_capture(lambda: scipy.integrate.solve_ivp(
        rhs, T_SPAN, Y0, method="nope"))
    assert out.message == (
        f"`method` must be one of {v.SCIPY_METHODS} or OdeSolver class.")


def test_wrap_args():
    assert wrap_args(rhs, None) is rhs

    def f(t, y, a, b):
        return (t, y, a, b)

    assert wrap_args(f, (1, 2))(0.5, "y") == (0.5, "y", 1, 2)
    assert wrap_args(f, [1, 2])(0.5, "y") == (0.5, "y", 1, 2)
    assert wrap_args(f, "ab")(0.5, "y") == (0.5, "y", "a", "b")
    # A generator is read once, then passed on every call.
    g = wrap_args(f, (x for x in (1, 2)))
    assert g(0, 0) == g(0, 0) == (0, 0, 1, 2)


def test_wrap_jac():
    jac = np.eye(2)
    assert wrap_jac(jac, (1,)) is jac
    assert wrap_jac(rhs, None) is rhs
    assert wrap_jac(None, (1,)) is None

    def j(t, y, a):
        return a

    assert wrap_jac(j, (7,))(0.0, None) == 7
    expected = run_and_capture(lambda: scipy.integrate.solve_ivp(
        rhs, T_SPAN, Y0, method="Radau", jac=j, args=3))
    with pytest.raises(expected.exc_type, match=re.escape(expected.message)):
        wrap_jac(j, 3)


def test_args_error_chains_original():
    with pytest.raises(TypeError) as excinfo:
        wrap_args(rhs, 1)
    assert isinstance(excinfo.value.__cause__, TypeError)


def test_check_fun_output_conversion():
    out = check_fun_output([1, 2], (2,))
    assert out.dtype == np.float64
    out = check_fun_output([1j, 2], (2,))
    assert out.dtype == np.complex128
    out = check_fun_output((1.0, 2.0), (2,), dtype=complex)
    assert out.dtype == np.complex128
    with pytest.warns(np.exceptions.ComplexWarning):
        out = check_fun_output(np.array([1 + 1j, 2]), (2,), dtype=float)
    np.testing.assert_array_equal(out, [1.0, 2.0])


def test_check_fun_output_scalar_broadcast_for_n_1():
    out = check_fun_output(2.0, (1,))
    assert out.shape == (1,) and out[0] == 2.0
    out = check_fun_output(2.0, (1, 3))
    np.testing.assert_array_equal(out, [[2.0, 2.0, 2.0]])
    # Same as SciPy: the scalar return gives the exponential solution.
    res = scipy.integrate.solve_ivp(lambda t, y: float(y[0]), (0, 1), [1.0])
    assert res.success


def test_check_fun_output_vectorized_single_column():
    out = check_fun_output([1.0, 2.0], (2, 1))
    assert out.shape == (2, 1)


@pytest.mark.parametrize("value, shape, name, message", [
    (np.zeros(3), (2,), "fun",
     "`fun` returned an array of shape (3,); expected (2,)."),
    (np.zeros((2, 1)), (2,), "fun",
     "`fun` returned an array of shape (2, 1); expected (2,)."),
    (np.zeros((2, 3)), (2, 4), "fun",
     "`fun` returned an array of shape (2, 3); expected (2, 4)."),
    (1.0, (2,), "fun", "`fun` returned an array of shape (); expected (2,)."),
    (np.zeros(2), (2, 2), "jac",
     "`jac` returned an array of shape (2,); expected (2, 2)."),
])
def test_check_fun_output_wrong_shape(value, shape, name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_fun_output(value, shape, name=name)


def test_zero_atol_with_components_at_zero_solves_instead_of_looping():
    """atol = 0 gives a component that is exactly zero a zero tolerance scale: the
    scaled norms (0/0) and the first-step heuristic (overflow) must neither hang nor
    fail the solve (scipy's RK45 does not return on the first case)."""
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [0.0], vectorized=True, atol=0)
    assert res.status == 0 and res.y[0, -1] == 0.0
    res = chebpan.solve_ivp(lambda t, y: np.stack([y[1], -y[0]]), (0, 3), [0.0, 1.0],
                            vectorized=True, atol=0, rtol=1e-8)
    assert res.status == 0
    np.testing.assert_allclose(res.y[:, -1], [np.sin(3), np.cos(3)], rtol=1e-6)
    batch = chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), np.zeros((3, 2)),
                                    vectorized=True, atol=0)
    assert (batch.status == 0).all() and (batch.y[..., -1] == 0).all()
