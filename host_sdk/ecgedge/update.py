"""Signed, versioned update packages for a device's classifier head (docs/protocol.md §11).

A package is a 28-byte header, a payload and an HMAC-SHA256 tag over header + payload, made with
the per-device key (stdlib `hmac`; the firmware's `ecg_sha256.c` checks it)::

    magic "ECGP" | format 1 | kind | flags 0 | model_id u32 | embedding_len u16 | n_classes u16 |
    version u32 | payload_len u32 | payload_crc32 u32           (little-endian, `PackageHeader`)

Kinds: `Kind.HEAD` carries a new head (`ecgedge.personalize.HeadTables.to_bytes()`, 148 bytes);
`Kind.LABELS` carries (sample_index u32, class u8) records: labels of beats the device has
seen, which its µ-trainer turns into a new head. `send_package` moves a package over the wire in
chunks that fit one BLE notification (PKG_BEGIN, PKG_CHUNK x n, PKG_COMMIT); the device stages it
in its inactive A/B slot, verifies everything and only then switches (see `ecg_update.h`).

The key: the `key` argument, else the environment variable ``ECGEDGE_DEVICE_KEY`` (hex). The
virtual device (``ecgedge sim``) uses `DEV_KEY` when started without ``--device-key``: a
**development key that everybody knows**, for the simulator only; real devices are provisioned
with their own key at flashing.

Example:
    >>> with ecgedge.connect("sim://?inject_only=1") as dev:     # the sim's development key
    ...     dev.push_head(HeadTables.from_classifier(), key=update.DEV_KEY)
    ...     dev.model_info().head_version
"""

from __future__ import annotations

import hmac
import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import numpy.typing as npt

from . import protocol as p
from .errors import DeviceError, DeviceTimeout
from .protocol import ErrorCode, FrameType

if TYPE_CHECKING:
    from .device import Device
    from .personalize import HeadTables

__all__ = ["CHUNK_MAX", "DEV_KEY", "KEY_ENV", "Kind", "ModelInfo", "Package", "PersonalizationState",
           "build_package", "device_key", "head_payload", "labels_payload", "model_id",
           "model_info", "personalize", "push_head", "reset_payload", "reset_personalization",
           "send_package"]

MAGIC = 0x50474345  #: "ECGP"
FORMAT = 1
HEADER_LEN = 28
TAG_LEN = 32
RESET_DOMAIN = b"ECGEDGE-RESET-v1"  #: RESET_PERSONALIZATION tag prefix (§11.4)
CHUNK_MAX = 200  #: payload bytes per PKG_CHUNK (4 + 200 bytes: fits one BLE notification)
LABEL_LEN = 5
COMMIT_TIMEOUT_S = 10.0  #: PKG_COMMIT answer wait (the device verifies, and may train, first)
EMBEDDING_LEN = 16
N_CLASSES = 5
KEY_ENV = "ECGEDGE_DEVICE_KEY"
#: The virtual device's **development** key (32 bytes 0x00..0x1f), used by ``ecgedge sim`` only
#: when no ``--device-key`` is given. Public: never provision a real device with it.
DEV_KEY = bytes(range(32))

Progress = Callable[[int, int], None]  #: called with (payload bytes acknowledged, total)
Tables = Union["HeadTables", Mapping[str, Any], bytes]


class Kind(IntEnum):
    """Package kinds (header `kind`)."""

    HEAD = 1
    LABELS = 2


class PersonalizationState(IntEnum):
    """What the device's active head is (`ModelInfo.state`)."""

    FACTORY = 0
    PUSHED = 1  #: a head package from a host
    TRAINED = 2  #: trained on the device from a labels package


@dataclass(frozen=True)
class ModelInfo:
    """GET_MODEL_INFO (§11): the device's model and personalization state."""

    model_id: int  #: first 32 bits of the model's sha256 (`ecg_model_data.h` ECG_MODEL_ID_U32)
    active_slot: str | None  #: "A", "B", or None (factory head, nothing stored yet)
    state: PersonalizationState | int
    head_version: int  #: version of the active head, 0 for the factory head
    max_version: int  #: highest package version accepted; the next must be above it
    trainer_beats: int  #: beats in the µ-trainer's buffer
    trainer_labelled: int  #: of which labelled

    @classmethod
    def from_fields(cls, c: Any) -> "ModelInfo":
        slot = {0: "A", 1: "B"}.get(int(c.active_slot))
        return cls(int(c.model_id), slot, p.enum_or_int(PersonalizationState, c.state),
                   int(c.head_version), int(c.max_version),
                   int(c.trainer_beats), int(c.trainer_labelled))


@dataclass(frozen=True)
class Package:
    """A signed package: `header` (28 bytes), `payload`, `tag` (HMAC-SHA256 over both)."""

    header: bytes
    payload: bytes
    tag: bytes

    @property
    def fields(self) -> Any:
        """The header's fields (`protocol.PackageHeader`)."""
        return p.parse_payload(FrameType.PKG_BEGIN, self.header)

    @property
    def version(self) -> int:
        return int(self.fields.version)

    @property
    def kind(self) -> Kind:
        return Kind(self.fields.kind)


def device_key(key: bytes | str | None = None) -> bytes:
    """The per-device key: `key` (bytes, or a hex string), else ``$ECGEDGE_DEVICE_KEY`` (hex).

    Raises:
        ValueError: no key given, or not valid hex, or longer than 64 bytes.
    """
    if key is None:
        key = os.environ.get(KEY_ENV)
        if not key:
            raise ValueError(
                f"no device key: pass key=... (bytes or hex) or set {KEY_ENV}=HEX; the virtual "
                f"device started without --device-key uses the public development key "
                f"ecgedge.update.DEV_KEY ({DEV_KEY.hex()})")
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key.strip())
        except ValueError:
            raise ValueError(f"device key {key!r} is not hex (e.g. {DEV_KEY.hex()})") from None
    key = bytes(key)
    if not 1 <= len(key) <= 64:
        raise ValueError(f"device key has {len(key)} bytes; give 1 to 64 (32 recommended)")
    return key


def model_id() -> int:
    """The compiled model's id (ECG_MODEL_ID_U32): the first 32 bits of its sha256."""
    from . import _core

    return int(_core.BeatClassifier().model["sha256"][:8], 16)


def _check_version(version: int) -> None:
    if not 1 <= int(version) <= 0xFFFFFFFF:
        raise ValueError(f"version={version}: give 1 .. 2**32-1")


def reset_payload(*, version: int, key: bytes | str | None, model: int | None = None) -> bytes:
    """The RESET_PERSONALIZATION payload (§11.4): ``version`` u32, then HMAC-SHA256 with the
    per-device key over `RESET_DOMAIN` | model id u32 | version u32 (little-endian).

    Args:
        version: 1 .. 2^32-1, above the device's `ModelInfo.max_version`; it becomes the new
            replay floor.
        key: the per-device key (see `device_key`).
        model: the model id signed for (default: this SDK's model).
    """
    _check_version(version)
    mid = model_id() if model is None else int(model)
    msg = RESET_DOMAIN + mid.to_bytes(4, "little") + int(version).to_bytes(4, "little")
    tag = hmac.new(device_key(key), msg, "sha256").digest()
    return p.build_payload(FrameType.RESET_PERSONALIZATION,
                           dict(version=int(version), tag=list(tag)))


def build_package(kind: Kind | int, payload: bytes, *, version: int, key: bytes | str | None,
                  model: int | None = None, embedding_len: int = EMBEDDING_LEN,
                  n_classes: int = N_CLASSES, crc32: int | None = None) -> Package:
    """Header + payload + HMAC-SHA256 tag.

    Args:
        kind: `Kind.HEAD` or `Kind.LABELS`.
        payload: `head_payload(...)` or `labels_payload(...)`.
        version: 1 .. 2^32-1, above every version the device has accepted
            (`ModelInfo.max_version`).
        key: the per-device key (see `device_key`).
        model, embedding_len, n_classes: what the package is for (default: this SDK's model).
        crc32: override the payload CRC (tests of the device's checks only).
    """
    _check_version(version)
    fields = dict(magic=MAGIC, format=FORMAT, kind=int(kind), flags=0,
                  model_id=model_id() if model is None else int(model),
                  embedding_len=int(embedding_len), n_classes=int(n_classes),
                  version=int(version), payload_len=len(payload),
                  payload_crc32=zlib.crc32(payload) if crc32 is None else int(crc32))
    header = p.build_payload(FrameType.PKG_BEGIN, fields)
    tag = hmac.new(device_key(key), header + bytes(payload), "sha256").digest()
    return Package(header, bytes(payload), tag)


def head_payload(tables: Tables) -> bytes:
    """A HEAD payload (148 bytes) from `HeadTables`, a `BeatClassifier.head`-style mapping
    (weights, bias, multipliers, shifts, logits_scale, logits_zero_point), or the bytes."""
    from .personalize import HEAD_TABLES_BYTES, HeadTables

    if isinstance(tables, (bytes, bytearray, memoryview)):
        data = bytes(tables)
        HeadTables.from_bytes(data)  # validates the length
        return data
    if isinstance(tables, Mapping):
        for name in ("weights", "bias", "multipliers", "shifts"):
            arr = np.asarray(tables.get(name, 0))
            if arr.dtype.kind not in "iu":
                raise ValueError(
                    f"head {name} must be integers (the quantized tables, as BeatClassifier.head "
                    f"gives them), got {arr.dtype}; train float weights into int8 tables with "
                    "ecgedge.personalize (HeadTrainer / personalize_head) and push the HeadTables")
        bias = tables.get("bias")
        tables = HeadTables(np.asarray(tables["weights"], np.int8).reshape(N_CLASSES, -1),
                            np.zeros(N_CLASSES, np.int32) if bias is None
                            else np.asarray(bias, np.int32),
                            np.asarray(tables["multipliers"], np.int32),
                            np.asarray(tables["shifts"], np.int32),
                            float(np.float32(tables["logits_scale"])),
                            int(tables["logits_zero_point"]))
    data = tables.to_bytes()
    assert len(data) == HEAD_TABLES_BYTES
    return data


def labels_payload(sample_index: npt.ArrayLike, classes: npt.ArrayLike) -> bytes:
    """A LABELS payload: (sample_index u32, class u8) per beat.

    Args:
        sample_index: the beats' R-peak indices on the device's sample counter (as its
            `Beat.index`; the device matches them against the beats it buffered).
        classes: AAMI class per beat, 0 N, 1 S, 2 V, 3 F, 4 Q.
    """
    idx = np.asarray(sample_index).reshape(-1)
    cls = np.asarray(classes).reshape(-1)
    if idx.size == 0 or idx.size != cls.size:
        raise ValueError(f"give as many classes as sample indices, at least one "
                         f"({idx.size} indices, {cls.size} classes)")
    if idx.dtype.kind not in "iu" or cls.dtype.kind not in "iu":
        raise ValueError("sample indices and classes must be integers")
    if idx.min() < 0 or idx.max() > 0xFFFFFFFF:
        raise ValueError("sample indices must be 0 .. 2**32-1")
    if cls.min() < 0 or cls.max() >= N_CLASSES:
        raise ValueError(f"classes must be 0..{N_CLASSES - 1} (N S V F Q)")
    rec = np.zeros(idx.size, np.dtype([("index", "<u4"), ("cls", "u1")]))
    rec["index"], rec["cls"] = idx, cls
    return rec.tobytes()


# --------------------------------------------------------------------------------------------
# On a device (`Device.push_head` etc. call these)
# --------------------------------------------------------------------------------------------


async def model_info(dev: "Device") -> ModelInfo:
    """GET_MODEL_INFO."""
    r = await dev.request(FrameType.GET_MODEL_INFO)
    return _info(r, FrameType.GET_MODEL_INFO)


async def reset_personalization(dev: "Device", *, key: bytes | str | None = None,
                                version: int | None = None) -> ModelInfo:
    """RESET_PERSONALIZATION: the factory head, at once and after every reset. Authenticated
    and replay-protected like a package (`reset_payload`).

    Args:
        key: the per-device key (default ``$ECGEDGE_DEVICE_KEY``).
        version: default: the device's `max_version` + 1; it becomes the new replay floor, so
            older packages (and this reset) cannot be replayed afterwards.

    Raises:
        DeviceError: AUTH (wrong key), REPLAY (version not above `max_version`).
    """
    dev._require(p.Capability.HEAD_PACKAGES, "reset_personalization()")
    payload = reset_payload(version=await _next_version(dev, version), key=key)
    r = await dev.request(FrameType.RESET_PERSONALIZATION, payload)
    return _info(r, FrameType.RESET_PERSONALIZATION)


def _info(reply: Any, cmd: FrameType) -> ModelInfo:
    if reply.result is None:
        raise DeviceError(ErrorCode.LENGTH, cmd, "answer without a model-info body")
    return ModelInfo.from_fields(reply.result)


async def _ask(dev: "Device", ftype: FrameType, payload: bytes, **kw: Any) -> Any:
    """One command, resent after a timeout (`dev.retries` times): BEGIN restarts the transfer
    and a repeated chunk is answered ORDER with the offset to go on from, so both are safe to
    repeat."""
    for attempt in range(1 + dev.retries):
        try:
            return await dev.request(ftype, payload, check=False, **kw)
        except DeviceTimeout:
            if attempt == dev.retries:
                raise
    raise AssertionError("unreachable")


async def send_package(dev: "Device", pkg: Package, *,
                       progress: Progress | None = None) -> ModelInfo:
    """PKG_BEGIN, the payload in chunks of `CHUNK_MAX` bytes, PKG_COMMIT; returns the new
    model info once the device has verified the package and switched to it.

    Lost frames are survived: a chunk is resent after a timeout, and a chunk answered ORDER
    (a repeat, or one after a lost chunk) continues from the offset the device names. Any other
    refusal raises `DeviceError` with the device's code (AUTH, PKG_CRC, MODEL, REPLAY,
    INCOMPLETE, ...); the device's active head is then unchanged.
    """
    total = len(pkg.payload)
    r = await _ask(dev, FrameType.PKG_BEGIN, pkg.header)
    if r.status != ErrorCode.OK:
        raise DeviceError(r.status, FrameType.PKG_BEGIN)
    off = 0
    if progress is not None:
        progress(0, total)
    while off < total:
        n = min(CHUNK_MAX, total - off)
        payload = p.build_payload(FrameType.PKG_CHUNK,
                                  dict(offset=off, data=pkg.payload[off:off + n]))
        r = await _ask(dev, FrameType.PKG_CHUNK, payload)
        nxt = int(r.result.next_offset) if r.result is not None else None
        if r.status == ErrorCode.OK or (r.status == ErrorCode.ORDER and nxt is not None
                                        and 0 <= nxt <= total):
            off = nxt if nxt is not None else off + n
        else:
            raise DeviceError(r.status, FrameType.PKG_CHUNK, f"at payload offset {off}")
        if progress is not None:
            progress(off, total)
    # verification (and, for labels, training) happens before the answer: allow for it
    for attempt in range(1 + dev.retries):
        try:
            r = await dev.request(FrameType.PKG_COMMIT, pkg.tag,
                                  timeout=max(dev.timeout, COMMIT_TIMEOUT_S))
        except DeviceTimeout:
            # the command or its answer was lost: the device knows whether it switched
            info = await model_info(dev)
            if info.head_version == pkg.version and info.state != PersonalizationState.FACTORY:
                return info
            if attempt == dev.retries:
                raise
            continue  # not switched: the transfer is still open, commit again
        except DeviceError as exc:
            if attempt > 0 and exc.code == ErrorCode.STATE:
                raise DeviceError(exc.code, FrameType.PKG_COMMIT,
                                  "an earlier COMMIT's answer was lost and the package was not "
                                  "installed; send it again") from exc
            raise
        return _info(r, FrameType.PKG_COMMIT)
    raise AssertionError("unreachable")


async def _next_version(dev: "Device", version: int | None) -> int:
    return (await model_info(dev)).max_version + 1 if version is None else int(version)


async def push_head(dev: "Device", tables: Tables, *, version: int | None = None,
                    key: bytes | str | None = None,
                    progress: Progress | None = None) -> ModelInfo:
    """Send a new classifier head (HEAD package); it classifies from the next beat on.

    Args:
        tables: `HeadTables`, a `BeatClassifier.head`-style mapping, or the 148 bytes.
        version: package version; default: the device's `max_version` + 1.
        key: the per-device key (default ``$ECGEDGE_DEVICE_KEY``).
        progress: called with (bytes acknowledged, total).
    """
    dev._require(p.Capability.HEAD_PACKAGES, "push_head()")
    payload = head_payload(tables)
    pkg = build_package(Kind.HEAD, payload, version=await _next_version(dev, version), key=key)
    return await send_package(dev, pkg, progress=progress)


async def personalize(dev: "Device", sample_index: npt.ArrayLike, classes: npt.ArrayLike, *,
                      version: int | None = None, key: bytes | str | None = None,
                      progress: Progress | None = None) -> ModelInfo:
    """Label beats the device has seen (LABELS package); its µ-trainer trains a new head from
    the factory head on them and switches to it. Arguments as `push_head`, plus the beats'
    sample indices and classes (see `labels_payload`)."""
    dev._require(p.Capability.PERSONALIZE_LABELS, "personalize()")
    payload = labels_payload(sample_index, classes)
    pkg = build_package(Kind.LABELS, payload, version=await _next_version(dev, version), key=key)
    return await send_package(dev, pkg, progress=progress)
