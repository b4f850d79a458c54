"""Summary figures built up record by record (nothing but counters kept in memory)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ERROR_SAMPLE = 100


@dataclass
class SummaryBuilder:
    files: int = 0
    bytes: int = 0
    deleted: int = 0
    known: int = 0
    alerts: int = 0
    errors: int = 0
    yara_incomplete: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    hits: dict[str, Counter[str]] = field(default_factory=dict)
    yara_hits: Counter[str] = field(default_factory=Counter)
    error_samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        self.files += 1
        self.bytes += int(record.get("size") or 0)
        self.deleted += bool(record.get("deleted"))
        self.known += bool(record.get("known"))
        self.kinds[record.get("kind") or "unread"] += 1
        if any(h["alert"] for h in record["hashset_hits"]):
            self.alerts += 1
        for hit in record["hashset_hits"]:
            self.hits.setdefault(hit["set"], Counter())[hit["category"] or "(none)"] += 1
        yara = record.get("yara")
        if yara:
            for match in yara["matches"]:
                self.yara_hits[match["rule"]] += 1
            if not yara["complete"]:
                self.yara_incomplete += 1
        if record.get("error"):
            self.errors += 1
            if len(self.error_samples) < ERROR_SAMPLE:
                self.error_samples.append(
                    {
                        "path": record["path"],
                        "partition": record["partition"],
                        "error": record["error"],
                    }
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "deleted_files": self.deleted,
            "known_files": self.known,
            "alert_files": self.alerts,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "file_kinds": dict(self.kinds),
            "images": self.kinds.get("image", 0),
            "videos": self.kinds.get("video", 0),
            "hashset_hits": {name: dict(c) for name, c in self.hits.items()},
            "yara_hits": dict(self.yara_hits),
            "yara_incomplete": self.yara_incomplete,
        }
