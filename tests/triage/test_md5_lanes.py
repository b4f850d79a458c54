"""MD5 in vector lanes (triage/analysis/_md5lanes.c) gives OpenSSL's digests, whatever the
lengths and their mix, at every width this CPU runs; the scan falls back to OpenSSL when the
lanes are missing, switched off or wrong."""

from __future__ import annotations

import hashlib
import os
import platform
import random
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.analysis import hashers
from triage.scan.analyse import _Analysed, give_md5

compiled = hashers._compiled
WIDTHS = compiled.widths() if compiled is not None else []


def md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


@pytest.fixture(autouse=True)
def fresh_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test decides afresh whether the lanes are used (the answer is cached per process)."""
    monkeypatch.delenv("TRIAGE_MD5_LANES", raising=False)
    hashers.md5_lanes.cache_clear()
    yield
    hashers.md5_lanes.cache_clear()


def test_the_lanes_are_built_where_ci_runs() -> None:
    # The extension is optional for users without a C compiler; CI must build and test it.
    if os.environ.get("CI") != "true":
        pytest.skip("only CI must have built the extension")
    assert compiled is not None
    assert 1 in WIDTHS
    if platform.machine() == "x86_64":
        assert 8 in WIDTHS or 16 in WIDTHS, "an x86-64 CI machine without AVX2?"


needs_lanes = pytest.mark.skipif(compiled is None, reason="_md5lanes not built (no C compiler)")


@needs_lanes
@pytest.mark.parametrize("width", WIDTHS)
def test_every_length_around_the_padding_and_longer_ones(width: int) -> None:
    rng = random.Random(width)
    messages = [rng.randbytes(n) for n in range(0, 300)]
    messages += [rng.randbytes(rng.randrange(300, 200_000)) for _ in range(60)]
    rng.shuffle(messages)  # lanes of unequal lengths, refilled as they end
    assert compiled is not None
    assert compiled.digests(messages, width=width) == [md5(m) for m in messages]


@needs_lanes
@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=40), st.data())
def test_any_mix_of_messages(messages: list[bytes], data: st.DataObject) -> None:
    width = data.draw(st.sampled_from(WIDTHS))
    assert compiled is not None
    assert compiled.digests(messages, width=width) == [md5(m) for m in messages]


@needs_lanes
def test_a_few_long_messages_finished_one_at_a_time() -> None:
    # Fewer messages than the finishing threshold, and one far longer than the rest: the lanes
    # hand their state to plain C part way through.
    messages = [b"x" * 5_000_000, b"y" * 70_001, b"z" * 64]
    assert compiled is not None
    for width in WIDTHS:
        assert compiled.digests(messages, width=width) == [md5(m) for m in messages]
        assert compiled.digests(messages[:1], width=width) == [md5(messages[0])]
        assert compiled.digests([], width=width) == []


@needs_lanes
def test_any_bytes_like_buffer_and_clear_errors() -> None:
    assert compiled is not None
    data = b"evidence" * 1000
    assert compiled.digests([bytearray(data), memoryview(data)[8:], data]) == [
        md5(data),
        md5(data[8:]),
        md5(data),
    ]
    with pytest.raises(TypeError):
        compiled.digests(["text is not bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        compiled.digests(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="width must be 0, 1, 8 or 16"):
        compiled.digests([data], width=4)


def test_md5_many_keeps_the_order_of_its_buffers() -> None:
    rng = random.Random(7)
    buffers = [rng.randbytes(rng.randrange(0, 50_000)) for _ in range(50)]
    assert hashers.md5_many(buffers) == [md5(b).hex() for b in buffers]


@needs_lanes
def test_the_lanes_are_used_when_the_cpu_runs_them() -> None:
    lanes = hashers.md5_lanes()
    vector = [w for w in WIDTHS if w > 1]
    if not vector:
        assert lanes is None
        return
    assert lanes is not None and lanes[1] == vector[0]
    assert hashers.md5_implementation().startswith(f"htcu-triage {vector[0]} lanes")


def test_switched_off_in_the_environment_openssl_computes_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_MD5_LANES", "0")
    assert hashers.md5_lanes() is None
    assert hashers.md5_implementation().endswith("(hashlib)")
    assert hashers.md5_many([b"a", b"b", b"c"]) == [md5(b).hex() for b in (b"a", b"b", b"c")]


@needs_lanes
def test_the_avx2_lanes_can_be_asked_for_where_avx512_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    if 8 not in WIDTHS:
        pytest.skip("this CPU has no AVX2")
    monkeypatch.setenv("TRIAGE_MD5_LANES", "8")
    lanes = hashers.md5_lanes()
    assert lanes is not None and lanes[1] == 8
    assert "8 lanes (AVX2)" in hashers.md5_implementation()
    buffers = [bytes([n]) * (n * 1000) for n in range(20)]
    assert hashers.md5_many(buffers) == [md5(b).hex() for b in buffers]


def test_without_the_extension_openssl_computes_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    # Installed where there was no C compiler: the extension is optional.
    monkeypatch.setattr(hashers, "_compiled", None)
    assert hashers.md5_lanes() is None
    assert not hashers.md5_in_lanes(1)
    assert hashers.md5_implementation().endswith("(hashlib)")
    buffers = [b"one", b"two", b"three"]
    assert hashers.md5_many(buffers) == [md5(b).hex() for b in buffers]


def test_lanes_that_disagree_with_openssl_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(buffers: list[bytes], width: int = 0) -> list[bytes]:
        return [bytes(16) for _ in buffers]

    monkeypatch.setattr(hashers, "_compiled", SimpleNamespace(widths=lambda: [16, 1], digests=wrong))
    assert hashers.md5_lanes() is None
    buffers = [b"one", b"two", b"three", b"four"]
    assert hashers.md5_many(buffers) == [md5(b).hex() for b in buffers]


def test_a_file_that_could_not_be_read_leaves_the_others_digests_in_place() -> None:
    def analysed(content: bytes | None) -> _Analysed:
        return _Analysed({"md5": None}, md5_of=content)

    files = [analysed(b"first"), analysed(None), analysed(b"third" * 100), analysed(b""), analysed(b"fifth")]
    give_md5(files)
    assert [f.record["md5"] for f in files] == [
        md5(b"first").hex(),
        None,
        md5(b"third" * 100).hex(),
        md5(b"").hex(),
        md5(b"fifth").hex(),
    ]
    assert all(f.md5_of is None for f in files)  # the bytes are let go
