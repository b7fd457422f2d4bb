"""The virtual device: the firmware's `ecg_device` (compiled into `ecgedge._core`) with a
simulated front end and clock, independent of any transport.

The C device does all protocol and signal work; this class only plays the parts a port plays on
hardware (`ecg_hal.h`): it sets the device clock from the host's monotonic clock, and when the
device starts sampling (START_STREAM with the front end as source) it delivers the record's
counts through `push_samples`, from the record's first sample at every start and looped at its
end, either in real time (`speed` 1.0, or any factor) or as fast as the caller takes the output
(`speed` None). With no record the device serves injection only (source = injection, every table
rate allowed).

A transport moves bytes: `receive(host_bytes)`, `run(budget) -> device_bytes`, and `connect()` /
`disconnect()` when a host comes and goes (`ecgedge.sim.server` does that over TCP and a pty; an
in-process transport can call the same four methods).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from .. import _core
from ..protocol import RATES_HZ, Source
from ..update import DEV_KEY
from .record import MAX_LEADS, Record, SimError

__all__ = ["FW_VERSION", "MODEL_ID", "VirtualDevice"]

FW_VERSION = (0, 1, 0)  #: firmware version the virtual device reports
MODEL_ID = 0xF001  #: DEVICE_INFO model_id of the virtual device
MAX_CHUNKS_PER_RUN = 64  #: sample blocks produced per `run` call at most (keeps the loop responsive)
WIRE_RESERVE = 2 * 244  #: device queue room kept for answers while producing at full speed


class VirtualDevice:
    """One simulated ecgedge device.

    Args:
        record: what the front end plays; None for an injection-only device.
        fs_hz, leads, gain_uv_per_count: the injection-only device's format (ignored with a
            record, which sets all three).
        mains_hz: 50, 60, or None for no notch.
        speed: real-time factor of the front end (1.0 = real time); None = as fast as the output
            is taken.
        status_period_ms: STATUS period while a host is connected (0: never).
        clock: monotonic clock in seconds (tests may pass a fake one).
        storage_path: file holding the device's storage slots (A/B head slots, labels), so a
            pushed head survives a restart; None: RAM only (lost with the object).
        device_key: the per-device key of update packages (docs/protocol.md §11); None: the
            public development key `ecgedge.update.DEV_KEY` (simulator only).
        backfill_s: keep this many seconds of sample blocks for BACKFILL_REQUEST
            (docs/protocol.md §12; capability BACKFILL); 0: no backfill ring.
    """

    def __init__(self, record: Record | None = None, *, fs_hz: int = 360, leads: int = 1,
                 gain_uv_per_count: float = 5.0, mains_hz: int | None = 50,
                 speed: float | None = 1.0, status_period_ms: int = 1000,
                 clock: Callable[[], float] = time.monotonic,
                 storage_path: str | os.PathLike[str] | None = None,
                 device_key: bytes | None = None, backfill_s: int = 0) -> None:
        if speed is not None and not speed > 0:
            raise SimError(f"speed={speed!r}: give a positive real-time factor, or max")
        self.record = record
        self.speed = speed
        self._clock = clock
        self._t0 = clock()
        if record is not None:
            fs_hz, leads, gain_uv_per_count = record.fs_hz, record.leads, record.gain_uv_per_count
            source = Source.FRONT_END
            rates_mask = 1 << RATES_HZ.index(fs_hz) if fs_hz in RATES_HZ else 0
        else:
            source = Source.INJECT
            rates_mask = (1 << len(RATES_HZ)) - 1  # no front end: any table rate
        if not 1 <= leads <= MAX_LEADS:
            raise SimError(f"leads={leads}: the device serves 1 to {MAX_LEADS} leads")
        try:
            self.dev = _core.Device(int(fs_hz), int(leads), float(gain_uv_per_count),
                                    0 if mains_hz is None else int(mains_hz),
                                    rates_mask=rates_mask, source=int(source),
                                    fw_version=FW_VERSION, model_id=MODEL_ID,
                                    status_period_ms=int(status_period_ms),
                                    clock_us=self._now_us(),
                                    storage_path=None if storage_path is None
                                    else os.fspath(storage_path),
                                    device_key=DEV_KEY if device_key is None else device_key,
                                    backfill_s=int(backfill_s))
        except ValueError as exc:
            raise SimError(f"cannot configure the device: {exc}") from exc
        self._starts = self.dev.sampling_starts
        self._pos = 0  # next record sample the front end delivers
        self._t_start = 0.0  # clock when sampling started
        self._produced = 0  # instants delivered since then

    # ------------------------------------------------------------------ clock and front end

    def _now_us(self) -> int:
        return max(0, int((self._clock() - self._t0) * 1e6))

    def _tick(self) -> None:
        self.dev.clock_us = self._now_us()
        if self.dev.sampling_starts != self._starts:  # START_STREAM started the front end
            self._starts = self.dev.sampling_starts
            self._pos = 0
            self._t_start = self._clock()
            self._produced = 0

    @property
    def sampling(self) -> bool:
        """The front end runs (streaming from a record)."""
        return self.record is not None and bool(self.dev.sampling)

    def _take(self, n: int) -> np.ndarray:
        """The next `n` instants of the looped record."""
        assert self.record is not None
        counts = self.record.counts
        out = []
        while n > 0:
            k = min(n, len(counts) - self._pos)
            out.append(counts[self._pos:self._pos + k])
            self._pos = (self._pos + k) % len(counts)
            n -= k
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _deliver(self, n: int) -> None:
        """Hand `n` instants to the device, polling whenever its input ring is full."""
        block = self.dev.block_samples
        while n > 0:
            k = min(n, self.dev.in_free, block)
            if k == 0:
                self.dev.poll()
                if self.dev.in_free == 0:
                    return  # not reached: the front-end pipeline never waits
                continue
            self.dev.push_samples(self._take(k))
            self._produced += k
            n -= k
            self.dev.poll()

    # ------------------------------------------------------------------ transport side

    def connect(self) -> bytes:
        """A host connected: the device sends DEVICE_INFO (§6.2). Returns the bytes to send."""
        self._tick()
        self.dev.link(True)
        return self.dev.tx()

    def disconnect(self) -> None:
        """The host went away: its stream ends (front end stopped) and queued frames are dropped."""
        self._tick()
        self.dev.stop()
        self.dev.link(False)

    def receive(self, data: bytes) -> None:
        """Bytes from the host."""
        self._tick()
        self.dev.rx(data)
        self._tick()  # a START may have started the front end
        self.dev.poll()

    def run(self, budget: int) -> bytes:
        """Advance the front end to now, run the device, and return up to about `budget` bytes
        for the host (0: take nothing; the device's queue then fills and it drops and counts
        frames, as a real device on a stalled link does)."""
        self._tick()
        if self.sampling:
            if self.speed is not None:
                fs = self.dev.sampling_rate_hz * self.speed
                due = int((self._clock() - self._t_start) * fs) - self._produced
                self._deliver(min(max(due, 0), MAX_CHUNKS_PER_RUN * self.dev.block_samples))
            elif budget > 0:
                out = bytearray()
                for _ in range(MAX_CHUNKS_PER_RUN):
                    if len(out) >= budget or self.dev.tx_free < WIRE_RESERVE + 244:
                        break
                    self._deliver(self.dev.block_samples)
                    out += self.dev.tx()
                self.dev.poll()
                return bytes(out + self.dev.tx())
        self.dev.poll()
        return self.dev.tx(budget) if budget > 0 else b""

    def busy(self) -> bool:
        """More output can be produced right now (full speed, sampling)."""
        return self.speed is None and self.sampling

    def wakeup_s(self) -> float:
        """How long the caller may wait before calling `run` again."""
        if self.sampling:
            return 0.0 if self.speed is None else 0.005
        return 0.05

    def describe(self) -> str:
        """One line: what the device serves."""
        info = self.dev.info
        src = (f"record {self.record.name} (signals {', '.join(self.record.sig_names)}), looped, "
               f"speed {'max' if self.speed is None else f'{self.speed:g}'}"
               if self.record is not None else "injection only")
        mains = f"{info['mains_hz']} Hz notch" if info["mains_hz"] else "no notch"
        return (f"{info['leads']} lead(s) at {info['sample_rate_hz']} Hz, "
                f"{info['gain_uv_per_count']:g} µV/count, {mains}; {src}")
