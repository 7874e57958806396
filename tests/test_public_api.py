"""The public surface of chebpan, written down: a change to it must change this file.

``chebpan/__init__.py`` is the whole public API (with ``chebpan.testing``); every other
module lives in an underscored, private subpackage.
"""

import inspect
import pkgutil

import chebpan

EXPECTED_ALL = ["solve_ivp", "solve_ivp_batch", "OdeResult", "OdeSolution", "BatchOdeSolution",
                "DaskBatchResult", "batch_chunk_size", "cite", "__version__"]

EXPECTED_SIGNATURES = {
    "solve_ivp": "(fun, t_span, y0, method='PAN', t_eval=None, dense_output=False, "
                 "events=None, vectorized=None, args=None, **options)",
    "solve_ivp_batch": "(fun, t_span, y0, t_eval=None, dense_output=False, events=None, "
                       "vectorized=None, args=None, **options)",
    "cite": "(which: 'str' = 'all') -> 'str'",
    "batch_chunk_size": "(n, *, n_coeffs=None, n_nodes=None, batch_memory=None, "
                        "dtype='float64')",
    "OdeSolution": "(ts, coeffs, y_start, y_end, *, xp)",
    "OdeSolution.__call__": "(self, t)",
    "BatchOdeSolution": "(offsets, t_a, t_b, coeffs, y_start, y_end, *, direction, xp)",
    "BatchOdeSolution.__call__": "(self, t)",
}

#: Public methods and properties of the public classes (beyond ``__call__``).
EXPECTED_MEMBERS = {
    "OdeSolution": ["evaluate", "interpolants"],
    "BatchOdeSolution": [],
    "DaskBatchResult": ["compute"],
}


def _signature(path):
    obj = chebpan
    for part in path.split("."):
        obj = getattr(obj, part)
    return str(inspect.signature(obj))


def test_all_is_the_written_down_list():
    assert chebpan.__all__ == EXPECTED_ALL
    for name in EXPECTED_ALL:
        assert hasattr(chebpan, name), name


def test_signatures_are_unchanged():
    got = {path: _signature(path) for path in EXPECTED_SIGNATURES}
    assert got == EXPECTED_SIGNATURES


def test_public_members_of_the_classes():
    for name, members in EXPECTED_MEMBERS.items():
        cls = getattr(chebpan, name)
        public = sorted(m for m in vars(cls) if not m.startswith("_"))
        assert public == sorted(members), name


def test_ode_result_is_scipy_like():
    from scipy.optimize import OptimizeResult

    assert issubclass(chebpan.OdeResult, OptimizeResult)


def test_version_is_a_string():
    assert isinstance(chebpan.__version__, str) and chebpan.__version__


def test_every_other_module_is_private():
    public = sorted(info.name for info in pkgutil.iter_modules(chebpan.__path__)
                    if not info.name.startswith("_"))
    assert public == ["testing"]
