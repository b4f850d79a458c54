"""Files' times as the walk records them (``evidence.filesystems``)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from triage.evidence.filesystems import _iso, macb


def _plainly(seconds: int, nano: int) -> str | None:
    """The time as ``datetime`` writes it, in UTC with a Z; None for 0 or a time no calendar
    holds (``_iso`` formats each second once and must give the same)."""
    if not seconds:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nano // 1000)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat().replace("+00:00", "Z")


@given(
    st.one_of(st.integers(-(2**40), 2**40), st.integers(-(2**64), 2**64)),
    st.one_of(st.just(0), st.integers(0, 999_999_999), st.integers(0, 2**32)),
)
def test_a_time_is_written_as_datetime_writes_it(seconds: int, nano: int) -> None:
    assert _iso(seconds, nano) == _plainly(seconds, nano)
    assert _iso(seconds, nano) == _plainly(seconds, nano)  # and again, from the cache


def test_the_four_times_of_a_file() -> None:
    meta = SimpleNamespace(mtime=1714557600, mtime_nano=250_000_000, atime=0, ctime=1, crtime=253402300800)
    assert macb(meta) == {
        "modified": "2024-05-01T10:00:00.250000Z",
        "accessed": None,  # never set
        "changed": "1970-01-01T00:00:01Z",
        "born": None,  # past the year 9999
    }
