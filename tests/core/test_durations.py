from __future__ import annotations

import pytest

from kubectl_iter8.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("1h2m3.5s", 3723.5),
        ("1.5h", 5400.0),
        ("500us", 0.0005),
        ("30", 30.0),
        (12, 12.0),
        (0.5, 0.5),
    ],
)
def test_parses_go_durations_and_plain_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["ten seconds", "", "10", "5x", "s", "-3s", "1m 30s", True, -1])
def test_rejects_what_is_not_a_duration(text: str | int) -> None:
    if text == "10":
        assert parse_duration(text) == 10.0
        return
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (90, "1m30s"), (3600, "1h"), (0, "0ms"), (5, "5s")]
)
def test_formats_durations_for_messages(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
