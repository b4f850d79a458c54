"""Everything a scan can be asked to do, in one serialisable object."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from triage.analysis.hashsets import HashSetInfo
from triage.analysis.yarascan import RuleSet


@dataclass
class ScanOptions:
    hashsets: list[HashSetInfo] = field(default_factory=list)
    rules: RuleSet | None = None
    include_deleted: bool = False
    omit_known: bool = False  # known files (and nothing else found) counted, not listed
    expect_hashes: dict[str, str] = field(default_factory=dict)  # algorithm -> hex
    hash_image: bool = False  # hash the whole image even with nothing to compare against
    yara_timeout: int = 30
    yara_max_size: int = 64 * 1024 * 1024
    processes: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    read_block: int = 4 * 1024 * 1024
    batch_bytes: int = 64 * 1024 * 1024
    batch_files: int = 512
    walk_timeout: float = 3600.0
    batch_timeout: float = 900.0  # plus the time for the batch's bytes at slowest_rate
    slowest_rate: float = 16 * 1024 * 1024  # bytes a second: far below any disk or E01 read
    memory_limit: int = 2 * 1024 * 1024 * 1024  # address-space cap of each child process

    def provenance(self) -> dict[str, Any]:
        """The options as recorded in every result (rules and sets by hash, not content)."""
        data = asdict(self)
        data.pop("rules")
        data["hashsets"] = [
            {
                "name": h.name,
                "kind": h.kind.value,
                "format": h.format,
                "sha256": h.source_sha256,
                "entries": h.entries,
            }
            for h in self.hashsets
        ]
        data["rules"] = (
            {
                "sha256": self.rules.sha256,
                "files": list(self.rules.files),
                "included": list(self.rules.included),
                "rules": self.rules.rule_count,
            }
            if self.rules
            else None
        )
        return data
