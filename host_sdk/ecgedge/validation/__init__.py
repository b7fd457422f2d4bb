"""Validation: ANSI/AAMI EC57 scoring of detectors on WFDB databases."""

from .ec57 import BEAT_SYMBOLS, Comparison, Counts, Reference, compare

__all__ = ["BEAT_SYMBOLS", "Comparison", "Counts", "Reference", "compare"]
