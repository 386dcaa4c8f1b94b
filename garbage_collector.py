"""How a serving process's garbage collector runs: everything startup built frozen out of its sight, and young
collections made rare enough that a request's short-lived objects are freed by their reference counts first.

With CPython's default (a young collection every 700 net allocations), the in-flight state of 32 concurrent
requests (result dicts, resolve infos, awaitables) was examined, survived and was promoted again and again, so the
older generations filled with objects that die a moment later and full collections walked the whole heap: 29-40 %
of an executed request's CPU in one measurement (issue 14), 7 s of a 30-s bench round in another. Reference cycles
are still collected, after 20,000 net allocations instead of 700: a few MB of cyclic garbage at most.
"""
from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # net allocations between young collections (CPython: 700)
MIDDLE_THRESHOLD = 20  # young collections between middle ones (CPython: 10)
OLD_THRESHOLD = 10  # middle collections between full ones (CPython: 10; a full one also waits for 25 % growth)


def settle_after_startup() -> None:
    """Call once startup is done (schema, policy, demo data loaded): they live as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
