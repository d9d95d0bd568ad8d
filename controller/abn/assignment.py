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

Speed (every Lookup runs :func:`assign`, see ``benchmarks/README-abn.md``): BLAKE2b absorbs its
input as a stream, so the hash of (application, version, user) is the hash state after
(application, version), copied, plus the user. Those states are made once per (application,
version) and the eligible versions once per (application, versions) list, both in bounded caches;
a call then encodes the user once and costs one state copy, one update and one digest per
version. The draws are bit for bit those of :func:`uniform`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from struct import Struct

_BITS = 53  # a double holds 53 bits exactly, so (k + 0.5) / 2**53 is strictly inside (0, 1)
_SHIFT = 64 - _BITS
_SCALE = float(1 << _BITS)
_PERSON = b"iter8-abn"
_U64 = Struct(">Q")

#: (version number, weight, a copier of the hash state after (application, version))
_Draw = tuple[int, float, Callable[[], "hashlib.blake2b"]]


def _part(data: bytes) -> bytes:
    # length-prefixed: ("a", "bc") differs from ("ab", "c")
    return _U64.pack(len(data)) + data


@lru_cache(maxsize=4096)
def _prefix(application: str, version: int) -> hashlib.blake2b:
    """The hash state after (application, version); never updated afterwards, only copied."""
    h = hashlib.blake2b(digest_size=8, person=_PERSON)
    h.update(_part(application.encode()) + _part(str(version).encode()))
    return h


@lru_cache(maxsize=1024)
def _draws(application: str, versions: tuple[tuple[int, float], ...]) -> tuple[_Draw, ...]:
    # ascending version numbers, so that a strict "<" gives ties to the lower number
    eligible = sorted({(n, w) for n, w in versions if w > 0 and math.isfinite(w)})
    return tuple((number, weight, _prefix(application, number).copy) for number, weight in eligible)


def _unit(digest: bytes) -> float:
    k: int = _U64.unpack(digest)[0] >> _SHIFT
    return (k + 0.5) / _SCALE


def uniform(application: str, version: int, user: str) -> float:
    """A number in (0, 1), a stable function of its arguments (the same in every process)."""
    h = _prefix(application, version).copy()
    h.update(_part(user.encode()))
    return _unit(h.digest())


def assign(user: str, versions: Sequence[tuple[int, float]], *, application: str = "") -> int | None:
    """The version number ``user`` gets among ``versions`` (``(number, weight)`` pairs).

    Only versions with a finite weight > 0 take part; ``None`` when there is none. Ties (all but
    impossible) go to the lower version number.
    """
    pairs = versions if type(versions) is tuple else tuple(versions)
    try:
        draws = _draws(application, pairs)
    except TypeError:  # pairs given as lists: not hashable, so not a cache key as they are
        draws = _draws(application, tuple((number, weight) for number, weight in pairs))
    data = _part(user.encode())
    log, unpack = math.log, _U64.unpack
    best: int | None = None
    best_score = 0.0
    for number, weight, copy in draws:
        h = copy()
        h.update(data)
        # the same arithmetic as _unit, inlined: this loop is the cost of every Lookup
        score = -log(((unpack(h.digest())[0] >> _SHIFT) + 0.5) / _SCALE) / weight
        if best is None or score < best_score:
            best, best_score = number, score
    return best


@dataclass(frozen=True)
class AppVersions:
    """What ``versions_for`` may answer for a known application: its versions and a seed."""

    #: ``(version number, weight)`` pairs; those with weight > 0 take part.
    versions: tuple[tuple[int, float], ...]
    #: Mixed into every user's hash: a new seed reassigns every user (the routemap annotation
    #: ``iter8.tools/abn-seed``, for when a test must start over with fresh assignments).
    seed: str = ""
