"""A batch result's ``status``, ``message`` and events summarised for ``repr``.

A batch of K instances has K statuses and K messages; printed in full, a result with
K = 1000 ran to 70 000 characters.  The summary counts each status (naming the first
few instances of every status but success), each distinct message (the most common
first, a few of them in full) and the events found (``t_events``, ``y_events``: K
entries).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

__all__ = ["summarise_status", "summarise_messages", "summarise_events"]

#: Instances named per status, and distinct messages shown in full.
SHOWN = 5
_NAMES = {-1: "failed", 0: "reached the end", 1: "terminal event"}


def summarise_status(status):
    """``"array (K,): 998 × 0 (reached the end), 2 × -1 (failed: instances 3, 17)"``."""
    status = np.asarray(status)
    parts = []
    for value in sorted(set(status.tolist()), key=lambda v: (v != 0, v)):
        where = np.flatnonzero(status == value)
        name = _NAMES.get(value, "")
        if value != 0:
            shown = ", ".join(str(i) for i in where[:SHOWN])
            more = ", ..." if where.size > SHOWN else ""
            name = f"{name}: instance{'s' if where.size > 1 else ''} {shown}{more}"
        parts.append(f"{where.size} × {value}" + (f" ({name})" if name else ""))
    return f"array {status.shape}: " + (", ".join(parts) if parts else "empty")


def summarise_messages(messages):
    """The K messages as counts of the distinct ones, the most common first."""
    counts = Counter(messages).most_common()
    lines = [f"{len(messages)} messages, {len(counts)} distinct:"]
    lines += [f"  {count} × {message}" for message, count in counts[:SHOWN]]
    if len(counts) > SHOWN:
        rest = sum(count for _, count in counts[SHOWN:])
        lines.append(f"  ... {len(counts) - SHOWN} more distinct ({rest} instances)")
    return "\n".join(lines)


def summarise_events(events):
    """``t_events`` or ``y_events`` of a batch (K entries, each a list over the events)
    as counts: ``"list of K (one per instance) of 2 arrays: 7 + 3 found, in 5 instances"``."""
    if not len(events):
        return "list of 0 (one per instance)"
    counts = np.array([[len(found) for found in entry] for entry in events], dtype=np.int64)
    by_event = " + ".join(str(c) for c in counts.sum(axis=0)) or "0"
    instances = int(np.count_nonzero(counts.sum(axis=1)))
    return (f"list of {len(events)} (one per instance) of {counts.shape[1]} "
            f"array{'s' if counts.shape[1] != 1 else ''}: {by_event} found, in "
            f"{instances} instance{'s' if instances != 1 else ''}")
