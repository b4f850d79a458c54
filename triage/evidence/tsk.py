"""The bridge between our image sources and The Sleuth Kit (pytsk3)."""

from __future__ import annotations

import re

import pytsk3

from triage.evidence.formats import DetectedImage, ImageFormat
from triage.evidence.images import ImageSource, open_image


class SourceImgInfo(pytsk3.Img_Info):  # type: ignore[misc]
    """An external TSK image whose reads go to an ``ImageSource`` (split raw, EWF)."""

    def __init__(self, source: ImageSource) -> None:
        self._source = source
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def read(self, offset: int, size: int) -> bytes:
        return self._source.read(offset, size)

    def get_size(self) -> int:
        return self._source.size

    def close(self) -> None:
        self._source.close()


def open_tsk_image(detected: DetectedImage) -> pytsk3.Img_Info:
    """A TSK image for ``detected``. A single raw file is opened by TSK itself (read-only,
    no Python call per read); other formats go through ``SourceImgInfo``."""
    if detected.format is ImageFormat.raw:
        return pytsk3.Img_Info(str(detected.first))
    return SourceImgInfo(open_image(detected))


def tsk_version() -> str:
    return str(pytsk3.TSK_VERSION_STR)


_PYTSK_PLACE = re.compile(r"\b\w+: \(\w+\.cpp:\d+\) ")  # "FS_Info_Con: (tsk3.cpp:327) "


def tsk_words(exc: BaseException) -> str:
    """What The Sleuth Kit said, from a pytsk3 error: its last line, without pytsk3's own
    function and source line, which are no use to an examiner."""
    lines = str(exc).strip().splitlines()
    return _PYTSK_PLACE.sub("", lines[-1]).strip() if lines else type(exc).__name__
