"""Scanning an evidence image: integrity, walk, per-file analysis, outputs."""

from triage.scan.engine import scan_image
from triage.scan.options import ScanOptions

__all__ = ["ScanOptions", "scan_image"]
