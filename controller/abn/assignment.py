"""Which version a user gets: weighted rendezvous (highest random weight) hashing.

Each version with weight > 0 draws a number ``u`` in (0, 1) from a hash of (application, version
number, user), and scores ``-weight / ln(u)``; the highest score wins. Written as the smallest
``-ln(u) / weight`` (the same order, without dividing by zero): ``-ln(u)`` is exponentially
distributed, so ``-ln(u) / weight`` is exponential with rate ``weight``, and the smallest of
independent exponentials is version ``i``'s with probability ``weight_i / sum(weights)``. Shares of
users are therefore proportional to the weights (Iter8's linear ``weight * hash`` scoring is not).

The hash is BLAKE2b, with no per-process seed: the same user gets the same version after a
restart and on every replica. Because a version's draw depends only on its own number (not on the
other versions or their order), adding a version moves only users to that version, removing one
moves only that version's users, and changing one weight moves users only to or from that version.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

_BITS = 53  # a double holds 53 bits exactly, so (k + 0.5) / 2**53 is strictly inside (0, 1)


def uniform(application: str, version: int, user: str) -> float:
    """A number in (0, 1), a stable function of its arguments (the same in every process)."""
    h = hashlib.blake2b(digest_size=8, person=b"iter8-abn")
    for part in (application.encode(), str(version).encode(), user.encode()):
        h.update(len(part).to_bytes(8, "big"))  # length-prefixed: ("a", "bc") differs from ("ab", "c")
        h.update(part)
    k = int.from_bytes(h.digest(), "big") >> (64 - _BITS)
    return (k + 0.5) / (1 << _BITS)


def assign(user: str, versions: Sequence[tuple[int, float]], *, application: str = "") -> int | None:
    """The version number ``user`` gets among ``versions`` (``(number, weight)`` pairs).

    Only versions with a finite weight > 0 take part; ``None`` when there is none. Ties (all but
    impossible) go to the lower version number.
    """
    best: tuple[float, int] | None = None
    for number, weight in versions:
        if not (weight > 0 and math.isfinite(weight)):
            continue
        key = (-math.log(uniform(application, number, user)) / weight, number)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]
