"""What the fuzz tests share: hypothesis settings and the bounds every generated input must keep.

On CI the examples are derandomized (the same every run, so a red run is reproducible); locally they
are new each time (``ITER8_FUZZ_EXAMPLES`` sets how many). No example database is written into the
checkout.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=int(os.environ.get("ITER8_FUZZ_EXAMPLES", "60")),
    deadline=None,  # bounded below with a generous limit: the machines are noisy
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Per input: what "bounded" means (a dry run or a render of a small input takes milliseconds).
MAX_SECONDS = 10.0
MAX_PEAK_BYTES = 64 * 1024 * 1024
MAX_ERROR_CHARS = 4096


@contextmanager
def bounded() -> Iterator[None]:
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert elapsed < MAX_SECONDS, f"took {elapsed:.1f} s"
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.0f} MB"
