"""Names from evidence as text, the way Sleuth Kit's ``fiwalk`` writes them in DFXML.

A file system hands over names as bytes, which need not be UTF-8 and may hold control
characters: decoding them with replacement characters made different names one, and a
control character made the DFXML document unreadable (XML 1.0 cannot hold it, escaped or
not). So, as fiwalk does, each byte of an invalid UTF-8 sequence, each control character
(U+0000-U+001F), each backslash and the non-characters U+FFFE and U+FFFF are written as
``\\xHH`` (upper-case hex, one per byte of UTF-8): nothing is lost, the result is valid text
for JSON, XML and the database, and a name reads the same in our listing as in fiwalk's.
"""

from __future__ import annotations

import re

_PLAIN = re.compile(rb"[^\x00-\x1f\\\x80-\xff]*")  # bytes that are always themselves
_ESCAPED = re.compile("[\x00-\x1f\\\\\ufffe\uffff\udc80-\udcff]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _hex(match: re.Match[str]) -> str:
    char = match.group()
    if "\udc80" <= char <= "\udcff":  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{ord(char) - 0xDC00:02X}"
    return "".join(f"\\x{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def name_text(raw: bytes | str) -> str:
    """A name from a file system as text, escaped as fiwalk escapes it."""
    if isinstance(raw, str):
        return _ESCAPED.sub(_hex, raw)
    if _PLAIN.fullmatch(raw):  # the usual name: ASCII with nothing to escape
        return raw.decode("ascii")
    return _ESCAPED.sub(_hex, raw.decode("utf-8", "surrogateescape"))


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold (control characters but tab, newline
    and carriage return; U+FFFE, U+FFFF; lone surrogates) written as ``\\xHH``: for text that
    did not come through ``name_text``, such as an error message or the image's path."""
    return _NOT_XML.sub(_hex, text) if _NOT_XML.search(text) else text
