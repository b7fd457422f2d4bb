"""ecgedge: on-device ECG intelligence for wearables — host SDK.

`ecgedge.core` runs the firmware's C signal core on the host; `ecgedge.validation` scores
detectors the ANSI/AAMI EC57 way; the `ecgedge` command line drives both.
"""

__version__ = "0.1.0"
