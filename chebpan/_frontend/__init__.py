"""The scipy-compatible front end: ``solve_ivp``, its argument checks, backends and
complex states, and ``cite``."""
