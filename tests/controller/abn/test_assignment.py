"""Weighted rendezvous hashing: sticky, proportional, minimal movement, the same in every process."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
import threading
from collections import Counter

import pytest
from kubectl_iter8.controller.abn.assignment import assign, uniform

USERS = [f"user-{i}" for i in range(10_000)]
APP = "default/backend"


def assignments(versions: list[tuple[int, float]], users: list[str] = USERS) -> dict[str, int | None]:
    return {u: assign(u, versions, application=APP) for u in users}


def test_sticky_and_ignores_order():
    versions = [(0, 2.0), (1, 1.0), (2, 5.0)]
    first = assignments(versions, USERS[:500])
    assert first == assignments(versions, USERS[:500])
    assert first == assignments(list(reversed(versions)), USERS[:500])


def test_no_eligible_version():
    assert assign("u", []) is None
    assert assign("u", [(0, 0.0), (1, -1.0), (2, math.nan), (3, math.inf)]) is None
    assert assign("u", [(0, 0.0), (1, 1.0)]) == 1


def test_uniform_inside_open_interval():
    values = [uniform(APP, v, u) for v in range(3) for u in USERS[:2000]]
    assert all(0.0 < x < 1.0 for x in values)
    assert abs(sum(values) / len(values) - 0.5) < 0.01


def test_application_is_part_of_the_hash():
    versions = [(0, 1.0), (1, 1.0)]
    a = [assign(u, versions, application="ns/a") for u in USERS[:1000]]
    b = [assign(u, versions, application="ns/b") for u in USERS[:1000]]
    assert a != b


@pytest.mark.parametrize(
    "weights",
    [(1.0, 3.0), (1.0, 1.0), (10.0, 90.0), (1.0, 2.0, 7.0)],
)
def test_shares_proportional_to_weights(weights: tuple[float, ...]):
    # Each user lands on version i independently with p_i = w_i / sum(w), so the count is
    # Binomial(n, p_i) with standard deviation sqrt(n p (1 - p)) <= 50 for n = 10,000. Five
    # standard deviations (a two-sided chance below 6e-7 for a correct hash) is the tolerance; the
    # hash is deterministic, so the test either always passes or always fails.
    versions = list(enumerate(weights))
    counts = Counter(assignments(versions).values())
    n, total = len(USERS), sum(weights)
    for number, weight in versions:
        p = weight / total
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[number] - n * p) <= 5 * sigma, (number, counts[number], n * p, sigma)


@pytest.mark.parametrize("weights", [(30.0, 70.0), (50.0, 30.0, 20.0), (1.0, 1.0, 1.0, 97.0)])
def test_shares_within_one_point_for_100000_users(weights: tuple[float, ...]):
    # The figure: every version's share of 100,000 users within 1 percentage point of its
    # share of the weights (six standard deviations or more here).
    versions = list(enumerate(weights))
    counts = Counter(assign(f"customer-{i}", versions, application="shop/web") for i in range(100_000))
    for number, weight in versions:
        share = 100 * counts[number] / 100_000
        assert abs(share - 100 * weight / sum(weights)) < 1, (number, share)


def test_adding_a_version_moves_users_only_to_it():
    before = assignments([(0, 1.0), (1, 1.0)])
    after = assignments([(0, 1.0), (1, 1.0), (2, 1.0)])
    moved = {u for u in USERS if before[u] != after[u]}
    assert moved, "a new version must get some users"
    assert all(after[u] == 2 for u in moved)
    # and about its fair share (1/3; same binomial bound as above)
    assert abs(len(moved) - len(USERS) / 3) <= 5 * math.sqrt(len(USERS) * (1 / 3) * (2 / 3))


def test_removing_a_version_moves_only_its_users():
    before = assignments([(0, 1.0), (1, 2.0), (2, 1.0)])
    after = assignments([(0, 1.0), (1, 0.0), (2, 1.0)])  # weight 0: out of the draw
    for u in USERS:
        if before[u] != 1:
            assert after[u] == before[u]
        else:
            assert after[u] in (0, 2)


def test_changing_a_weight_moves_users_only_towards_it():
    before = assignments([(0, 1.0), (1, 1.0), (2, 1.0)])
    after = assignments([(0, 1.0), (1, 3.0), (2, 1.0)])
    for u in USERS:
        if before[u] != after[u]:
            assert after[u] == 1


def test_same_assignments_in_another_process():
    versions = [(0, 1.0), (1, 3.0), (4, 2.5)]
    users = USERS[:1000]
    here = [assign(u, versions, application=APP) for u in users]
    code = (
        "import json, sys\n"
        "from kubectl_iter8.controller.abn.assignment import assign\n"
        f"users = [f'user-{{i}}' for i in range({len(users)})]\n"
        f"print(json.dumps([assign(u, {versions!r}, application={APP!r}) for u in users]))\n"
    )
    for seed in ("1", "12345"):  # str hashing is seeded per process; ours must not depend on it
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, timeout=60
        )
        assert json.loads(proc.stdout) == here


def reference_uniform(application: str, version: int, user: str) -> float:
    """The documented hash, spelled out: BLAKE2b-64, person "iter8-abn", each part length-prefixed."""
    data = b"".join(
        len(p).to_bytes(8, "big") + p for p in (application.encode(), str(version).encode(), user.encode())
    )
    k = int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"iter8-abn").digest(), "big") >> 11
    return (k + 0.5) / 2**53


def reference_assign(user: str, versions, application: str) -> int | None:
    eligible = [(n, w) for n, w in versions if w > 0 and math.isfinite(w)]
    if not eligible:
        return None
    return min((-math.log(reference_uniform(application, n, user)) / w, n) for n, w in eligible)[1]


def test_uniform_is_the_documented_hash():
    # pins the output: a change here moves users between versions on upgrade
    for application, version, user in [
        ("", 0, ""),
        (APP, 1, "alice"),
        ("ns/é", 12, "ü" * 40),
        ("a", 3, "b" * 5000),
    ]:
        assert uniform(application, version, user) == reference_uniform(application, version, user)
    assert uniform(APP, 0, "user-1") == 0.6342923247183332


def test_assign_matches_the_definition():
    # random version lists (duplicates, unordered, ineligible weights, lists instead of tuples,
    # tuples, many applications so that the caches evict) against the rule written plainly
    rng = random.Random(7)
    weights = [0.0, -1.0, math.nan, math.inf, 1e-300, 5e-324, 1, 2.5, 0.1, 10.0]
    for i in range(3000):
        application = f"ns/app-{rng.randrange(2000)}"
        versions = [(rng.randrange(6), rng.choice(weights)) for _ in range(rng.randrange(6))]
        user = f"user-{i}"
        expected = reference_assign(user, versions, application)
        assert assign(user, versions, application=application) == expected, (user, versions)
        assert assign(user, tuple(versions), application=application) == expected
        assert assign(user, [list(v) for v in versions], application=application) == expected  # type: ignore[misc]


def test_same_assignments_from_many_threads():
    versions = [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)]
    users = USERS[:2000]
    expected = [reference_assign(u, versions, APP) for u in users]
    results: list[list[int | None]] = []

    def work() -> None:
        results.append([assign(u, list(versions), application=APP) for u in users])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4
