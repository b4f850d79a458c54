"""Fixtures for the triage engine: real images built by tests/images/build.py, hash sets and
rules that know the planted files."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.images import build
from tests.images.planted import KNOWN_BAD, KNOWN_GOOD, YARA_MARKER, Planted
from tests.services import IN_CI
from triage.evidence.formats import detect
from triage.scan import ScanOptions, analyse


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    missing = build.missing_tools()
    if missing:
        if IN_CI:
            pytest.fail(f"image tools missing under CI: {missing}")
        pytest.skip(f"image tools missing: {missing}")
    return build.build_all(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def hashset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hashsets")
    bad, good = Planted("", KNOWN_BAD), Planted("", KNOWN_GOOD)
    vics20 = {
        "@odata.context": "http://github.com/ICMEC/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media",
        "value": [
            {
                "MediaID": 1,
                "Category": 1,
                "MD5": bad.md5.upper(),
                "SHA1": bad.sha1.upper(),
                "VictimIdentified": "false",
                "IsPrecategorized": True,
                "MediaSize": len(KNOWN_BAD),
            },
            {"MediaID": 2, "Category": "0", "MD5": "0" * 32, "OffenderIdentified": False},
        ],
    }
    (out / "vics20.json").write_text(json.dumps(vics20))
    vics13 = {
        "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
        "value": [
            {"Media": [{"MediaID": 7, "Category": 2, "SHA1": bad.sha1.upper(), "IsDistributed": "true"}]}
        ],
    }
    (out / "vics13.json").write_text(json.dumps(vics13))
    conn = sqlite3.connect(out / "nsrl.db")
    conn.executescript(
        "CREATE TABLE FILE (sha256 TEXT, sha1 TEXT, md5 TEXT, crc32 TEXT, file_name TEXT, file_size INTEGER,"
        " package_id INTEGER);"
        "CREATE VIEW DISTINCT_HASH AS SELECT DISTINCT sha256, sha1, md5, crc32 FROM FILE;"
    )
    import hashlib

    conn.execute(
        "INSERT INTO FILE VALUES (?,?,?,?,?,?,?)",
        (
            hashlib.sha256(KNOWN_GOOD).hexdigest().upper(),
            good.sha1.upper(),
            good.md5.upper(),
            "00000000",
            "kernel32.dll",
            len(KNOWN_GOOD),
            1,
        ),
    )
    conn.commit()
    conn.close()
    return out


@pytest.fixture(scope="session")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rules")
    (out / "marker.yar").write_text(
        f'rule planted_marker : test {{ meta: author = "tests" strings: $m = "{YARA_MARKER.decode()}" '
        'condition: $m and filename != "" }\n'
    )
    return out


@pytest.fixture
def testdata_copy(tmp_path: Path) -> Path:
    """A writable copy of the dfvfs images (the originals are read-only evidence)."""
    from tests.conftest import TESTDATA

    target = tmp_path / "dfvfs"
    shutil.copytree(TESTDATA, target)
    for f in target.iterdir():
        f.chmod(0o644)
    return target


Odd = dict[str, tuple[Path, list[Planted]]]


@pytest.fixture(scope="session")
def odd(images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Odd:
    """Images whose files lie in more than one piece, or partly in no block at all (``images``
    first: it fails under CI, or skips, when the tools that build them are missing)."""
    out = tmp_path_factory.mktemp("odd")
    return {
        "fragmented": build.fragmented_fat(out / "fragmented.img"),
        "sparse": build.sparse_ext4(out / "sparse.img"),
    }


Worker = Callable[..., analyse._WorkerState]


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """A pool worker's state, made in this process: ``worker(image, direct, **options)``."""
    made: list[analyse._WorkerState] = []

    def make(image: Path, direct: bool = True, **options: Any) -> analyse._WorkerState:
        monkeypatch.setenv("TRIAGE_DIRECT_READS", "1" if direct else "0")
        analyse.init_worker(detect(image), ScanOptions(**options))
        assert analyse._state is not None
        made.append(analyse._state)
        return analyse._state

    yield make
    for state in made:
        if state.direct is not None:
            state.direct.close()
    analyse._state = None
