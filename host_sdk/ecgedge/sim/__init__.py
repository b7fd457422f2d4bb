"""The virtual ecgedge device: the firmware's `ecg_device` on the host, served over TCP or a pty.

    ecgedge sim --record ../shared/data/mitdb/100 --tcp 5555 --speed max
    ecgedge sim --inject-only --fs 360 --leads 1          # pty; prints the slave path

- `record`: WFDB records as int16 counts (raw ADC minus baseline, gain from the header) and
  `counts_to_mv`, the device's exact counts -> millivolt conversion.
- `device`: `VirtualDevice`, the C device plus a simulated front end and clock (no I/O).
- `server`: `serve`, the TCP / pty loop with clean shutdown on SIGINT / SIGTERM.
"""

from .device import FW_VERSION, MODEL_ID, VirtualDevice
from .record import Record, SimError, counts_to_mv, load_record
from .server import serve

__all__ = ["FW_VERSION", "MODEL_ID", "Record", "SimError", "VirtualDevice", "counts_to_mv",
           "load_record", "serve"]
