"""Data shipped with the package: the demo excerpt of MIT-BIH record 119 (see README.md here).

`demo_record()` is the WFDB record path (without extension) that `ecgedge demo` and ``sim://``
(with no record) play: the first 4 minutes of MIT-BIH Arrhythmia Database record 119, signal MLII,
360 Hz, original sample values, with its reference beat annotations (``.atr``).
Licence: ODC-By 1.0, attribution in `ATTRIBUTION` and README.md.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ATTRIBUTION", "DEMO_RECORD_NAME", "demo_record"]

DEMO_RECORD_NAME = "mitdb119"
ATTRIBUTION = (
    "Contains information from the MIT-BIH Arrhythmia Database "
    "(https://physionet.org/content/mitdb/1.0.0/), which is made available under the ODC "
    "Attribution License (https://physionet.org/content/mitdb/view-license/1.0.0/). "
    "Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng in Med and Biol "
    "20(3):45-50 (2001). Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet. "
    "Circulation 101(23):e215-e220 (2000).")


def demo_record() -> Path:
    """Path of the demo record (no extension), inside the installed package."""
    return Path(__file__).resolve().parent / DEMO_RECORD_NAME
