"""Hash sets: readers for each format, and an indexed store that keeps lookups fast at
NSRL scale (tens of millions of hashes)."""

from triage.analysis.hashsets.records import HashRecord, HashSetKind
from triage.analysis.hashsets.store import HashSetInfo, HashSetStore, load_hashset

__all__ = ["HashRecord", "HashSetInfo", "HashSetKind", "HashSetStore", "load_hashset"]
