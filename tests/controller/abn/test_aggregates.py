"""The running statistics against the two-pass ones of :mod:`.summary`, on worked and random samples."""

from __future__ import annotations

import math
import random

import pytest
from kubectl_iter8.controller.abn.aggregates import Running, over_users
from kubectl_iter8.controller.abn.summary import Stats


def test_add_matches_two_pass():
    running = Running()
    for value in (2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0):
        running = running.add(value)
    assert running.stats() == Stats(8, 5.0, pytest.approx(math.sqrt(32 / 7)), 2.0, 9.0)
    assert Running().add(3.5).stats() == Stats(1, 3.5, 0.0, 3.5, 3.5)


def test_grow_matches_recomputing_the_sums():
    rng = random.Random(3)
    sums = [0.0] * 20
    running = Running()
    seen: set[int] = set()
    for _ in range(2000):
        who, value = rng.randrange(20), rng.uniform(-100, 1e6)
        if who in seen:
            running = running.grow(sums[who], value)
        else:
            seen.add(who)
            running = running.add(value)
        sums[who] += value
    writers = [sums[i] for i in sorted(seen)]
    expected = Stats.of(writers)
    got = Running(running.n, running.mean, running.m2, min(writers), max(writers)).stats()
    assert got.count == expected.count
    assert got.mean == pytest.approx(expected.mean, rel=1e-12)
    assert got.stddev == pytest.approx(expected.stddev, rel=1e-9)


def test_over_users_merges_the_idle_as_zeros():
    # writers 15 and 3, two idle users: 15 3 0 0, mean 4.5, variance 51
    writers = Running().add(15.0).add(3.0)
    writers = Running(writers.n, writers.mean, writers.m2, 3.0, 15.0)
    assert over_users(writers, 2) == Stats(4, 4.5, pytest.approx(math.sqrt(51)), 0.0, 15.0)
    assert over_users(writers, 0) == Stats(2, 9.0, pytest.approx(math.sqrt(72)), 3.0, 15.0)
    negative = Running(1, -4.0, 0.0, -4.0, -4.0)
    assert over_users(negative, 1) == Stats(2, -2.0, pytest.approx(math.sqrt(8)), -4.0, 0.0)
