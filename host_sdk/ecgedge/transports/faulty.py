"""`FaultyTransport`: a wrapper that corrupts bytes on purpose, for tests of the receive path.

    from ecgedge.transports import transport_for_url
    from ecgedge.transports.faulty import FaultyTransport
    link = FaultyTransport(transport_for_url("sim://...?speed=max"), seed=1, flip=2e-5,
                           drop=1e-5, insert=1e-5)

Faults are placed by byte position in the stream, not per `read()` call: the gaps between faults
are drawn from a seeded RNG (geometric, mean 1 / (flip + drop + insert)), so the same seed and the
same byte stream give the same faults however the link happens to chunk it. Each fault is one of

- flip: the byte is XORed with a random non-zero value (one corrupted byte; CRC-16 catches every
  such burst);
- drop: the byte is removed;
- insert: a random byte is inserted before it (0x00, a frame delimiter, half of the time).

Only bytes from the device are corrupted unless `to_device=True`. `enabled` turns faults on and
off (positions keep advancing only while enabled); `stats` counts what was done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .base import Transport

__all__ = ["FaultStats", "FaultyTransport"]


@dataclass
class FaultStats:
    """What a `FaultyTransport` did so far."""

    bytes_in: int = 0  #: bytes seen from the device while enabled
    flipped: int = 0
    dropped: int = 0
    inserted: int = 0

    @property
    def faults(self) -> int:
        return self.flipped + self.dropped + self.inserted

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Corrupter:
    """Position-based fault placement for one direction."""

    def __init__(self, rng: np.random.Generator, flip: float, drop: float, insert: float,
                 stats: FaultStats) -> None:
        self.rng = rng
        self.total = flip + drop + insert
        self.p = np.array([flip, drop, insert]) / self.total if self.total > 0 else None
        self.stats = stats
        self.pos = 0  # stream offset of the next byte
        self.next_fault = self._draw_gap()

    def _draw_gap(self) -> int:
        if self.total <= 0:
            return 1 << 62
        return int(self.rng.geometric(min(self.total, 1.0))) - 1  # bytes before the next fault

    def __call__(self, data: bytes) -> bytes:
        n = len(data)
        end = self.pos + n
        if self.next_fault >= end:
            self.pos = end
            return data
        out = bytearray()
        src = 0  # next unconsumed offset in data
        while self.next_fault < end:
            i = self.next_fault - self.pos
            out += data[src:i]
            kind = int(self.rng.choice(3, p=self.p))
            byte = data[i]
            if kind == 0:
                out.append(byte ^ int(self.rng.integers(1, 256)))
                self.stats.flipped += 1
            elif kind == 1:
                self.stats.dropped += 1
            else:
                extra = 0 if self.rng.random() < 0.5 else int(self.rng.integers(1, 256))
                out += bytes((extra, byte))
                self.stats.inserted += 1
            src = i + 1
            self.next_fault += 1 + self._draw_gap()
        out += data[src:]
        self.pos = end
        return bytes(out)


class FaultyTransport(Transport):
    """Wraps `inner` and flips, drops and inserts bytes at the given per-byte rates.

    Args:
        inner: the transport to wrap (connected and closed through this one).
        seed: RNG seed; the faults depend only on it and the byte stream.
        flip, drop, insert: probability per byte of each fault.
        to_device: also corrupt the bytes sent to the device (own RNG stream).
        enabled: start with faults on.
    """

    def __init__(self, inner: Transport, *, seed: int = 0, flip: float = 0.0, drop: float = 0.0,
                 insert: float = 0.0, to_device: bool = False, enabled: bool = True) -> None:
        super().__init__(inner.url)
        for name, rate in (("flip", flip), ("drop", drop), ("insert", insert)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}={rate!r}: give a probability per byte, 0..1")
        self.inner = inner
        self.enabled = enabled
        self.stats = FaultStats()
        self.stats_to_device = FaultStats()
        seeds = np.random.SeedSequence(seed).spawn(2)
        self._rx = _Corrupter(np.random.default_rng(seeds[0]), flip, drop, insert, self.stats)
        self._tx = _Corrupter(np.random.default_rng(seeds[1]), flip, drop, insert,
                              self.stats_to_device) if to_device else None
        self.max_write = inner.max_write

    def describe(self) -> str:
        return f"{self.inner.describe()} (with injected faults)"

    async def connect(self) -> None:
        await self.inner.connect()

    async def read(self) -> bytes:
        while True:
            data = await self.inner.read()
            if not self.enabled:
                return data
            self.stats.bytes_in += len(data)
            out = self._rx(data)
            if out:
                return out

    async def write(self, data: bytes) -> None:
        if self._tx is not None and self.enabled:
            self.stats_to_device.bytes_in += len(data)
            data = self._tx(bytes(data))
        await self.inner.write(data)

    async def close(self) -> None:
        await self.inner.close()
