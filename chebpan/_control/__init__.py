"""Segment control: the options, the policy choices and the drivers that move along ``t``.

:mod:`~chebpan._control.single` drives one IVP (with
:mod:`~chebpan._control.segment_solver` for the iteration on one segment),
:mod:`~chebpan._control.batch` K IVPs in lock step; both follow
:mod:`~chebpan._control.policy` and take their defaults from
:mod:`~chebpan._control.options`.
"""
