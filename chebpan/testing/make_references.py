"""Recompute the benchmark suite's references and write ``_reference_values.py``.

Usage::

    python -m chebpan.testing.make_references            # all problems (~2 minutes)
    python -m chebpan.testing.make_references A1 HIRES   # only these (merged into the file)
    python -m chebpan.testing.make_references --check    # recompute, compare, write nothing

Each reference is computed two independent ways (see :mod:`chebpan.testing._references`);
a problem whose two ways disagree beyond what the 1e-6 target needs is refused.
"""

from __future__ import annotations

import argparse
import datetime
import pprint
import sys
from pathlib import Path

_FILE = Path(__file__).with_name("_reference_values.py")
_HEADER = '''"""Stored references of the benchmark suite (generated data, hence its length; do not edit).

Written by ``python -m chebpan.testing.make_references`` on {date}; see
:mod:`chebpan.testing._references` for how each value was computed and checked.
"""

REFERENCES = '''


def _load_existing() -> dict:
    try:
        from chebpan.testing._reference_values import REFERENCES
    except ImportError:
        return {}
    return dict(REFERENCES)


def main(argv=None) -> int:
    from chebpan.testing._references import make_reference
    from chebpan.testing._suite import SUITE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="problems (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="compare with the stored values, write nothing")
    args = parser.parse_args(argv)
    names = args.names or list(SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        parser.error(f"unknown problems: {unknown}")
    stored = _load_existing()
    records = dict(stored)
    status = 0
    for name in names:
        rec = make_reference(SUITE[name]())
        records[name] = rec
        line = (f"{name:9s} {rec['kind']:13s} agreement {rec['agreement']:.1e}  "
                f"resolvable {rec['resolvable']}  ({rec['seconds']} s)")
        if args.check and name in stored:
            old = [float(v) for v in stored[name]["values"]]
            new = [float(v) for v in rec["values"]]
            same = old == new
            line += "  stored: " + ("identical" if same else "DIFFERENT")
            status |= not same
        print(line, flush=True)
    if not args.check:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        text = _HEADER.format(date=date) + pprint.pformat(records, width=92, sort_dicts=False)
        _FILE.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {_FILE}")
    return status


if __name__ == "__main__":
    sys.exit(main())
