"""The user's right-hand side: evaluation rounds, Jacobians, sparsity, counters.

:class:`~chebpan._rhs.evaluator.Evaluator` is the only place where ``fun`` and ``jac``
are called.
"""
