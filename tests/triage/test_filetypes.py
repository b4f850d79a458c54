"""File types from content signatures (``analysis.filetypes``)."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from triage.analysis import filetypes
from triage.analysis.filetypes import HEADER_BYTES, SIGNATURES, detect


def _first_in_the_table(head: bytes) -> tuple[str | None, str]:
    """What ``detect`` must answer: RIFF's forms, else the first signature in the table that
    matches, checked one by one."""
    if not head:
        return None, "empty"
    if head.startswith(b"RIFF") and head[8:12] in filetypes._RIFF:
        return filetypes._RIFF[head[8:12]]
    for sig in SIGNATURES:
        if head.startswith(sig.magic, sig.offset):
            return sig.mime, sig.kind
    return None, "unknown"


def test_every_signature_is_found_where_it_lies() -> None:
    for sig in SIGNATURES:
        head = os.urandom(sig.offset) + sig.magic + os.urandom(HEADER_BYTES)
        mime, kind = detect(head[:HEADER_BYTES])
        assert (mime, kind) == _first_in_the_table(head[:HEADER_BYTES]), sig
        # Only a more specific signature earlier in the table (an ftyp brand) may take it.
        first = next(s for s in SIGNATURES if head.startswith(s.magic, s.offset))
        assert SIGNATURES.index(first) <= SIGNATURES.index(sig)


def test_the_kinds_a_triage_counts() -> None:
    assert detect(b"\xff\xd8\xff\xe0\x00\x10JFIF") == ("image/jpeg", "image")
    assert detect(b"\x00\x00\x00\x18ftypheic\x00\x00") == ("image/heic", "image")
    assert detect(b"\x00\x00\x00\x18ftypisom\x00\x00") == ("video/mp4", "video")
    assert detect(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("image/webp", "image")
    assert detect(bytes(257) + b"ustar\x0000") == ("application/x-tar", "archive")
    assert detect(b"") == (None, "empty")
    assert detect(b"plain text") == (None, "unknown")


magics = st.sampled_from(SIGNATURES).map(lambda s: bytes(s.offset) + s.magic)


@given(st.one_of(st.binary(max_size=HEADER_BYTES), st.tuples(magics, st.binary()).map(b"".join)))
def test_the_answer_is_the_first_signature_in_the_table_that_matches(head: bytes) -> None:
    head = head[:HEADER_BYTES]
    assert detect(head) == _first_in_the_table(head)
