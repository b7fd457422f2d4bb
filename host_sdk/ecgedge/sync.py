"""Synchronous facade for scripts: `ecgedge.connect(url)` returns a `Device`.

    import ecgedge

    with ecgedge.connect("sim://../shared/data/mitdb/100?speed=max&mains=60") as dev:
        print(dev.info())
        rec = dev.record(seconds=10)                 # a Recording (gaps marked), see recording.py
        rec.save("x.dat")                            # WFDB; .csv, .edf too
        for item in dev.stream():                    # SampleBlock | Gap, until you break
            ...
        beats = dev.beats()                          # subscribe first, then
        report = dev.inject(counts)                  # inject; `beats` ends at the STOP flush
        print([b.index for b in beats if isinstance(b, ecgedge.Beat)])

Each `Device` runs an asyncio event loop in one daemon thread and forwards every call to the
async `ecgedge.device.Device` (available as `.aio`). Iterators fetch events in batches, so a
script keeps up with a device at full speed. Exceptions are the async API's (`ecgedge.errors`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, Literal, TypeVar

import numpy.typing as npt

from . import device as _d
from .errors import TransportError
from .transports.base import Transport

__all__ = ["Device", "EventIterator", "connect"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ecgedge-loop",
                                        daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if not self.alive:
            coro.close()
            raise TransportError("the device is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a sync ecgedge.Device cannot be used from its own event loop; "
                               "use the async API (ecgedge.connect_async)")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()

    @property
    def alive(self) -> bool:
        return not self.loop.is_closed() and self._thread.is_alive()


class EventIterator:
    """Blocking iterator over an `ecgedge.device.EventStream`; close it (or leave the ``with``)
    to stop the stream it started."""

    def __init__(self, runner: _LoopThread, stream: _d.EventStream) -> None:
        self._runner = runner
        self._stream = stream
        self._buf: deque[Any] = deque()
        self._done = False

    def __iter__(self) -> "EventIterator":
        return self

    def __next__(self) -> Any:
        if not self._buf:
            if self._done:
                raise StopIteration
            batch = self._runner.run(self._stream.next_batch())
            if not batch:
                self._done = True
                raise StopIteration
            self._buf.extend(batch)
        return self._buf.popleft()

    def close(self) -> None:
        """Unsubscribe, and stop the device stream if this iterator started it."""
        self._done = True
        if not self._stream._closed and self._runner.alive:
            self._runner.run(self._stream.aclose())

    def __enter__(self) -> "EventIterator":
        if not self._stream._begun:
            self._runner.run(self._stream._begin())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._stream._closed and self._runner.alive:
                self.close()
        except Exception:
            pass


class Device:
    """A device for scripts: the async `ecgedge.device.Device` behind blocking calls.

    Args:
        target: a device URL (``serial://``, ``socket://``, ``sim://``, ``qemu://``) or a
            `Transport`.
        backend: transport override (a `Transport` subclass or a backend name), like bleak's.
        timeout: seconds to wait for each command's answer.
        retries: extra attempts for idempotent commands.

    Opens at once (raises `TransportError`, `DeviceTimeout`, `ProtocolVersionError`); use as a
    context manager or call `close()`.
    """

    def __init__(self, target: str | Transport, *, backend: str | type[Transport] | None = None,
                 timeout: float = _d.DEFAULT_TIMEOUT_S, retries: int = _d.DEFAULT_RETRIES) -> None:
        from .transports import transport_for_url

        transport = target if isinstance(target, Transport) else transport_for_url(target, backend)
        self._runner = _LoopThread()
        self.aio = _d.Device(transport, timeout=timeout, retries=retries)
        try:
            self._runner.run(self.aio.open())
        except BaseException:
            self._runner.stop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    # lifecycle
    def close(self) -> None:
        """Stop a stream this host started, close the link, end the loop thread; idempotent."""
        if self._runner.alive:
            try:
                self._run(self.aio.close())
            finally:
                self._runner.stop()

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return repr(self.aio).replace("ecgedge.device.Device", "ecgedge.Device")

    @property
    def transport(self) -> Transport:
        return self.aio.transport

    @property
    def is_open(self) -> bool:
        return self.aio.is_open

    # commands
    def info(self) -> _d.DeviceInfo:
        """GET_INFO: the device's format, versions and capabilities."""
        return self._run(self.aio.info())

    @property
    def last_info(self) -> _d.DeviceInfo:
        return self.aio.last_info

    def start(self) -> None:
        """START_STREAM (the sample counter restarts at 0)."""
        self._run(self.aio.start())

    def stop(self) -> None:
        """STOP_STREAM; returns after the device flushed its last block and pending beats."""
        self._run(self.aio.stop())

    def configure(self, **fields: Any) -> _d.DeviceInfo:
        """CONFIGURE (sample_rate_hz, mains_hz, content, source); returns the new info."""
        return self._run(self.aio.configure(**fields))

    def time_sync(self) -> _d.TimeSync:
        return self._run(self.aio.time_sync())

    @property
    def status(self) -> _d.Status | None:
        return self.aio.status

    @property
    def counters(self) -> _d.LinkCounters:
        return self._run(self._call(lambda: self.aio.counters))

    # personalization (ecgedge.update)
    def model_info(self) -> Any:
        """GET_MODEL_INFO: model id, active slot, head version, µ-trainer fill."""
        return self._run(self.aio.model_info())

    def push_head(self, tables: Any, *, version: int | None = None, key: Any = None,
                  progress: Any = None) -> Any:
        """Send a new classifier head as a signed package (see `ecgedge.update.push_head`)."""
        return self._run(self.aio.push_head(tables, version=version, key=key, progress=progress))

    def personalize(self, sample_index: npt.ArrayLike, classes: npt.ArrayLike, *,
                    version: int | None = None, key: Any = None, progress: Any = None) -> Any:
        """Label beats for the device's µ-trainer (see `ecgedge.update.personalize`)."""
        return self._run(self.aio.personalize(sample_index, classes, version=version, key=key,
                                              progress=progress))

    def reset_personalization(self, *, key: Any = None, version: int | None = None) -> Any:
        """Back to the factory head, persisted (see `ecgedge.update.reset_personalization`)."""
        return self._run(self.aio.reset_personalization(key=key, version=version))

    @property
    def alerts(self) -> Any:
        """Rhythm alerts kept on the device: `ecgedge.alerts.SyncAlerts` (pull, ack, configure,
        wait_notice)."""
        from .alerts import SyncAlerts

        return SyncAlerts(self._run, self.aio.alerts)

    # data
    def stream(self, *, start: bool = True, stop_on_exit: bool = True) -> EventIterator:
        """`SampleBlock` | `Gap` until you stop iterating (then the stream is stopped)."""
        return EventIterator(self._runner, self._run(self._call(
            self.aio.stream, start=start, stop_on_exit=stop_on_exit)))

    def beats(self) -> EventIterator:
        """`Beat` | `Gap` of the current (or next) stream, until it ends (subscribes now)."""
        return EventIterator(self._runner, self._run(self._call(self.aio.beats)))

    def events(self, *, start: bool = False, stop_on_exit: bool = True,
               kinds: Iterable[str] = ("samples", "beats", "status")) -> EventIterator:
        """Every event of the given kinds in arrival order."""
        return EventIterator(self._runner, self._run(self._call(
            self.aio.events, start=start, stop_on_exit=stop_on_exit, kinds=tuple(kinds))))

    def record(self, seconds: float, *, start: bool = True) -> Any:
        """Stream `seconds` of samples into a `Recording` (see `ecgedge.recording`)."""
        return self._run(self.aio.record(seconds, start=start))

    def inject(self, samples: npt.ArrayLike, *, units: Literal["counts", "mV"] = "counts",
               start: bool = True, stop: bool = True) -> _d.InjectReport:
        """Feed samples in place of the front end, with flow control; see the async `inject`."""
        return self._run(self.aio.inject(samples, units=units, start=start, stop=stop))


def connect(target: str | Transport, *, backend: str | type[Transport] | None = None,
            timeout: float = _d.DEFAULT_TIMEOUT_S, retries: int = _d.DEFAULT_RETRIES) -> Device:
    """Open a device for scripts; see `Device`."""
    return Device(target, backend=backend, timeout=timeout, retries=retries)
