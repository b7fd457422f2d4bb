"""Update packages end to end: the SDK (`ecgedge.update`, `Device.push_head` / `personalize` /
`model_info` / `reset_personalization`) against the virtual device, whose firmware core
(`ecg_device` + `ecg_update` + `ecg_classifier` + `ecg_trainer`) runs in this process.

Each rejection (wrong tag, wrong CRC, wrong model id or shape, out-of-order and missing chunks,
a replayed version, a transfer cut by the link or by a device reset) must give its error code and
leave the active head untouched: the same head version, and the same classes for the same beats.
A device "reset" is a new virtual device on the same storage file.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import shutil
import subprocess
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgedge
from ecgedge import protocol as p
from ecgedge import update as U
from ecgedge.data import demo_record
from ecgedge.errors import DeviceError
from ecgedge.personalize import HeadTables
from ecgedge.protocol import ErrorCode, FrameType
from ecgedge.sim import VirtualDevice, load_record
from ecgedge.transports.faulty import FaultyTransport
from ecgedge.transports.qemu import QemuTransport
from ecgedge.transports.sim import InProcessSimTransport, SimOptions

KEY = bytes(range(100, 132))  # this test's per-device key (not the development default)
SECONDS = 40


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    """40 s of MIT-BIH record 119 (the packaged demo excerpt): normal beats and many V beats."""
    rec = load_record(demo_record())
    assert rec.fs_hz == 360 and rec.leads == 1
    return rec.counts[: SECONDS * rec.fs_hz]


def _url(storage: Path | None = None, key: bytes = KEY) -> str:
    url = f"sim://?inject_only=1&speed=max&fs=360&gain_uv=5&key={key.hex()}"
    return url + (f"&storage={storage}" if storage is not None else "")


@pytest.fixture()
def storage(tmp_path: Path) -> Path:
    return tmp_path / "slots.bin"


def _connect(storage: Path | None = None, **kw: Any) -> ecgedge.Device:
    return ecgedge.connect(_url(storage), backend="inprocess", **kw)


def _classes(dev: ecgedge.Device, counts: np.ndarray) -> list[int]:
    return [int(b.beat_class) for b in dev.inject(counts).beats]


def _boosted(cls: int) -> HeadTables:
    """The factory head with one class's bias raised far enough to win every beat."""
    t = HeadTables.from_classifier()
    bias = t.bias.copy()
    bias[cls] += 10**6
    return dataclasses.replace(t, bias=bias)


def _assert_refused(dev: ecgedge.Device, code: ErrorCode, fn: Any, classes: list[int],
                    counts: np.ndarray) -> None:
    before = dev.model_info()
    with pytest.raises(DeviceError) as e:
        fn()
    assert e.value.code == code
    after = dev.model_info()
    assert (after.head_version, after.state, after.active_slot) == \
        (before.head_version, before.state, before.active_slot)
    assert _classes(dev, counts) == classes


# --------------------------------------------------------------------------------------------
# What works
# --------------------------------------------------------------------------------------------


def test_device_reports_the_update_capabilities_and_its_model(storage: Path) -> None:
    with _connect(storage) as dev:
        caps = dev.info().capabilities
        assert p.Capability.HEAD_PACKAGES in caps and p.Capability.PERSONALIZE_LABELS in caps
        info = dev.model_info()
    assert info.model_id == U.model_id()
    assert (info.state, info.head_version, info.max_version, info.active_slot) == \
        (U.PersonalizationState.FACTORY, 0, 0, None)


def test_head_push_changes_the_classes_from_the_next_beat_on(counts: np.ndarray) -> None:
    half = len(counts) // 2
    with _connect() as dev:
        factory = Counter(_classes(dev, counts))
        assert factory[p.BeatClass.V] < sum(factory.values())  # record 119: N and V beats
        first = dev.inject(counts[:half], stop=False)  # a stream that goes on
        info = dev.push_head(_boosted(p.BeatClass.V), key=KEY)
        second = dev.inject(counts[half:], start=False)
    assert (info.state, info.head_version, info.active_slot) == (U.PersonalizationState.PUSHED,
                                                                 1, "A")
    assert Counter(int(b.beat_class) for b in first.beats) != Counter({int(p.BeatClass.V): 1})
    assert second.beats and all(b.beat_class == p.BeatClass.V for b in second.beats)


def test_pushed_head_survives_a_device_reset(counts: np.ndarray, storage: Path) -> None:
    with _connect(storage) as dev:
        dev.push_head(_boosted(p.BeatClass.S), key=KEY, version=41)
    with _connect(storage) as dev:  # a new device on the same storage
        info = dev.model_info()
        assert (info.head_version, info.state) == (41, U.PersonalizationState.PUSHED)
        assert set(_classes(dev, counts)) == {int(p.BeatClass.S)}


def test_reset_personalization_restores_factory_classes_persistently(counts: np.ndarray,
                                                                     storage: Path) -> None:
    with _connect(storage) as dev:
        factory = _classes(dev, counts)
        dev.push_head(_boosted(p.BeatClass.F), key=KEY)
        assert set(_classes(dev, counts)) == {int(p.BeatClass.F)}
        info = dev.reset_personalization(key=KEY)  # version: max_version + 1 = 2
        assert (info.state, info.head_version, info.max_version) == \
            (U.PersonalizationState.FACTORY, 0, 2)
        assert _classes(dev, counts) == factory
    with _connect(storage) as dev:
        assert dev.model_info().state == U.PersonalizationState.FACTORY
        assert dev.model_info().max_version == 2
        assert _classes(dev, counts) == factory
        for version in (1, 2):  # neither the head before the reset nor one at its version
            with pytest.raises(DeviceError) as e:
                dev.push_head(_boosted(p.BeatClass.F), key=KEY, version=version)
            assert e.value.code == ErrorCode.REPLAY


def test_reset_personalization_refuses_wrong_key_replay_and_wrong_length(
        counts: np.ndarray, storage: Path) -> None:
    with _connect(storage) as dev:
        dev.push_head(_boosted(p.BeatClass.S), key=KEY, version=5)
        pushed = [int(p.BeatClass.S)] * len(_classes(dev, counts))
        _assert_refused(dev, ErrorCode.AUTH,
                        lambda: dev.reset_personalization(key=bytes(32)), pushed, counts)
        for version in (5, 3):  # equal to the highest accepted, and older
            _assert_refused(dev, ErrorCode.REPLAY,
                            lambda: dev.reset_personalization(key=KEY, version=version),
                            pushed, counts)
        good = U.reset_payload(version=6, key=KEY)
        for payload in (b"", good[:-1], good + b"\x00"):
            _assert_refused(dev, ErrorCode.LENGTH, lambda: dev._run(dev.aio.request(
                FrameType.RESET_PERSONALIZATION, payload)), pushed, counts)
        assert dev.model_info().max_version == 5
        info = dev.reset_personalization(key=KEY, version=6)
        assert (info.state, info.max_version) == (U.PersonalizationState.FACTORY, 6)
        _assert_refused(dev, ErrorCode.REPLAY,  # the same signed reset, replayed
                        lambda: dev._run(dev.aio.request(FrameType.RESET_PERSONALIZATION, good)),
                        _classes(dev, counts), counts)


def test_labels_train_a_head_on_the_device(counts: np.ndarray) -> None:
    with _connect() as dev:
        beats = dev.inject(counts).beats
        before = Counter(int(b.beat_class) for b in beats)
        idx = np.array([b.index for b in beats])
        # label every beat S: the trained head must move towards S
        info = dev.personalize(idx, np.full(len(idx), int(p.BeatClass.S)), key=KEY)
        assert (info.state, info.head_version) == (U.PersonalizationState.TRAINED, 1)
        assert info.trainer_labelled == len(idx) == info.trainer_beats
        after = Counter(_classes(dev, counts))
    assert after[int(p.BeatClass.S)] > before[int(p.BeatClass.S)]


def test_labels_for_beats_the_device_never_saw_are_refused(counts: np.ndarray) -> None:
    with _connect() as dev:
        classes = _classes(dev, counts)
        _assert_refused(dev, ErrorCode.STATE,
                        lambda: dev.personalize([10**9], [1], key=KEY), classes, counts)


def test_transfer_survives_lost_frames_on_a_faulty_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(U, "COMMIT_TIMEOUT_S", 0.5)
    opts = SimOptions.from_url(_url(), InProcessSimTransport.url_format)
    link = FaultyTransport(InProcessSimTransport(opts), seed=3, drop=0.004, to_device=True)
    with ecgedge.connect(link, timeout=0.2, retries=6) as dev:
        for version in range(1, 6):
            info = dev.push_head(_boosted(p.BeatClass.V), key=KEY, version=version)
            assert (info.state, info.head_version) == (U.PersonalizationState.PUSHED, version)
        assert link.stats.dropped > 0


# --------------------------------------------------------------------------------------------
# Rejections: code, and the active head untouched
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def pushed(counts: np.ndarray) -> Iterator[tuple[ecgedge.Device, list[int]]]:
    """A device running a pushed head (version 5: V everywhere), and its classes."""
    with _connect() as dev:
        dev.push_head(_boosted(p.BeatClass.V), key=KEY, version=5)
        yield dev, _classes(dev, counts)


def _send(dev: ecgedge.Device, pkg: U.Package) -> Any:
    return dev._run(U.send_package(dev.aio, pkg))


def _head(version: int = 6, **kw: Any) -> U.Package:
    return U.build_package(U.Kind.HEAD, U.head_payload(_boosted(p.BeatClass.S)), version=version,
                           key=kw.pop("key", KEY), **kw)


def _altered() -> U.Package:
    """A signed package whose payload was changed afterwards (its CRC fixed up to match)."""
    good = _head()
    payload = bytes([good.payload[0] ^ 1]) + good.payload[1:]
    header = U.build_package(U.Kind.HEAD, payload, version=6, key=KEY).header
    return U.Package(header, payload, good.tag)


@pytest.mark.parametrize("case,code", [
    ("wrong_key", ErrorCode.AUTH),
    ("altered_payload", ErrorCode.AUTH),
    ("wrong_crc", ErrorCode.PKG_CRC),
    ("wrong_model_id", ErrorCode.MODEL),
    ("wrong_embedding_len", ErrorCode.MODEL),
    ("wrong_class_count", ErrorCode.MODEL),
    ("older_version", ErrorCode.REPLAY),
    ("same_version", ErrorCode.REPLAY),
])
def test_bad_package_is_refused_and_the_head_is_untouched(
        pushed: tuple[ecgedge.Device, list[int]], counts: np.ndarray, case: str,
        code: ErrorCode) -> None:
    dev, classes = pushed
    pkgs = {
        "wrong_key": lambda: _head(key=bytes(32)),
        "altered_payload": _altered,
        "wrong_crc": lambda: _head(crc32=12345),
        "wrong_model_id": lambda: _head(model=U.model_id() ^ 1),
        "wrong_embedding_len": lambda: _head(embedding_len=32),
        "wrong_class_count": lambda: _head(n_classes=4),
        "older_version": lambda: _head(version=4),
        "same_version": lambda: _head(version=5),
    }
    _assert_refused(dev, code, lambda: _send(dev, pkgs[case]()), classes, counts)


def test_out_of_order_and_missing_chunks_are_refused(
        pushed: tuple[ecgedge.Device, list[int]], counts: np.ndarray) -> None:
    dev, classes = pushed
    pkg = _head()

    def chunk(off: int, n: int) -> Any:
        payload = p.build_payload(FrameType.PKG_CHUNK,
                                  dict(offset=off, data=pkg.payload[off:off + n]))
        return dev._run(dev.aio.request(FrameType.PKG_CHUNK, payload, check=False))

    dev._run(dev.aio.request(FrameType.PKG_BEGIN, pkg.header))
    assert chunk(0, 50).status == ErrorCode.OK
    r = chunk(100, 48)  # skips 50..99
    assert (r.status, r.result.next_offset) == (ErrorCode.ORDER, 50)
    r = chunk(0, 50)  # a repeat is not taken twice
    assert (r.status, r.result.next_offset) == (ErrorCode.ORDER, 50)
    _assert_refused(dev, ErrorCode.INCOMPLETE,
                    lambda: dev._run(dev.aio.request(FrameType.PKG_COMMIT, pkg.tag)),
                    classes, counts)


def test_transfer_cut_by_the_link_is_discarded(counts: np.ndarray) -> None:
    """The host goes away half-way (the device sees the link drop); a COMMIT after reconnecting
    finds no open transfer, and the head is the old one."""
    vdev = VirtualDevice(None, fs_hz=360, speed=None, device_key=KEY)
    pkg = _head(version=1)
    chunk = p.build_payload(FrameType.PKG_CHUNK, dict(offset=0, data=pkg.payload[:100]))

    def answer(ftype: FrameType, payload: bytes, seq: int) -> Any:
        vdev.receive(p.encode_frame(ftype, seq, payload))
        frames = p.FrameDecoder(p.Accept.TO_HOST).feed(vdev.run(4096))
        [r] = [p.parse_response(f.payload) for f in frames if f.type == FrameType.RESPONSE]
        return r

    vdev.connect()
    assert answer(FrameType.PKG_BEGIN, pkg.header, 1).status == ErrorCode.OK
    assert answer(FrameType.PKG_CHUNK, chunk, 2).status == ErrorCode.OK
    vdev.disconnect()  # the link is cut
    vdev.connect()
    r = answer(FrameType.PKG_CHUNK, p.build_payload(
        FrameType.PKG_CHUNK, dict(offset=100, data=pkg.payload[100:])), 3)
    assert r.status == ErrorCode.STATE
    assert answer(FrameType.PKG_COMMIT, pkg.tag, 4).status == ErrorCode.STATE
    info = answer(FrameType.GET_MODEL_INFO, b"", 5).result
    assert (info.state, info.head_version) == (0, 0)


def test_transfer_cut_by_a_device_reset_leaves_the_old_head(counts: np.ndarray,
                                                            storage: Path) -> None:
    with _connect(storage) as dev:
        dev.push_head(_boosted(p.BeatClass.V), key=KEY, version=5)
        classes = _classes(dev, counts)
        pkg = _head()
        dev._run(dev.aio.request(FrameType.PKG_BEGIN, pkg.header))
        dev._run(dev.aio.request(FrameType.PKG_CHUNK, p.build_payload(
            FrameType.PKG_CHUNK, dict(offset=0, data=pkg.payload[:100]))))
    # reset half-way: the inactive slot holds half a package
    with _connect(storage) as dev:
        assert dev.model_info().head_version == 5
        assert _classes(dev, counts) == classes
        _assert_refused(dev, ErrorCode.STATE,
                        lambda: dev._run(dev.aio.request(FrameType.PKG_COMMIT, pkg.tag)),
                        classes, counts)
        assert dev.push_head(_boosted(p.BeatClass.S), key=KEY).head_version == 6  # still works


def test_sdk_refuses_bad_labels_and_keys_before_sending() -> None:
    with pytest.raises(ValueError, match="classes must be"):
        U.labels_payload([1, 2], [0, 5])
    with pytest.raises(ValueError, match="as many classes"):
        U.labels_payload([1, 2], [0])
    with pytest.raises(ValueError, match="not hex"):
        U.device_key("xyz")
    with pytest.raises(ValueError, match="head tables are 148 bytes"):
        U.head_payload(b"\x00" * 147)
    float_head = dict(HeadTables.from_classifier().__dict__)
    float_head["weights"] = float_head["weights"].astype(np.float32) / 100
    with pytest.raises(ValueError, match="must be integers"):
        U.head_payload(float_head)
    # the classifier's own head dict is accepted as is, and packs like HeadTables
    from ecgedge.classifier import BeatClassifier
    assert U.head_payload(BeatClassifier().head) == HeadTables.from_classifier().to_bytes()


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(U.KEY_ENV, KEY.hex())
    assert U.device_key() == KEY
    monkeypatch.delenv(U.KEY_ENV)
    with pytest.raises(ValueError, match=U.KEY_ENV):
        U.device_key()


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

PROPS = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@PROPS
@given(st.lists(st.tuples(st.sampled_from([t for t in FrameType if 0x18 <= t <= 0x1D]),
                          st.binary(max_size=230)), max_size=25))
def test_random_personalization_commands_never_change_the_head(
        cmds: list[tuple[FrameType, bytes]]) -> None:
    """Whatever unsigned bytes arrive in the update commands, the device answers each one and
    runs the factory head afterwards (nothing was signed with its key)."""
    vdev = VirtualDevice(None, fs_hz=360, speed=None, device_key=KEY)
    dec = p.FrameDecoder(p.Accept.TO_HOST)
    vdev.connect()
    answered = 0
    for seq, (ftype, payload) in enumerate(cmds, 1):
        vdev.receive(p.encode_frame(ftype, seq, payload))
        answered += sum(f.type == FrameType.RESPONSE for f in dec.feed(vdev.run(8192)))
    vdev.receive(p.encode_frame(FrameType.GET_MODEL_INFO, 0, b""))
    [info] = [p.parse_response(f.payload).result for f in dec.feed(vdev.run(8192))
              if f.type == FrameType.RESPONSE]
    assert answered == len(cmds)
    assert (info.state, info.head_version, info.max_version) == (0, 0, 0)


@PROPS
@given(st.binary(min_size=1, max_size=64), st.binary(max_size=300),
       st.sampled_from(list(U.Kind)), st.integers(1, 2**32 - 1))
def test_package_header_round_trips_and_tag_is_stdlib_hmac(key: bytes, payload: bytes,
                                                           kind: U.Kind, version: int) -> None:
    pkg = U.build_package(kind, payload, version=version, key=key)
    f = pkg.fields
    assert (f.magic, f.format, f.kind, f.version, f.payload_len) == \
        (U.MAGIC, U.FORMAT, kind, version, len(payload))
    assert len(pkg.header) == U.HEADER_LEN
    assert f.payload_crc32 == zlib.crc32(payload)
    assert pkg.tag == hmac.new(key, pkg.header + payload, "sha256").digest()


@PROPS
@given(st.binary(min_size=1, max_size=64), st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_reset_payload_is_version_then_stdlib_hmac_over_domain_model_version(
        key: bytes, version: int, model: int) -> None:
    """docs/protocol.md §11.4, written out here rather than taken from `update.py`."""
    payload = U.reset_payload(version=version, key=key, model=model)
    le = version.to_bytes(4, "little")
    assert payload == le + hmac.new(
        key, b"ECGEDGE-RESET-v1" + model.to_bytes(4, "little") + le, "sha256").digest()
    assert p.parse_payload(FrameType.RESET_PERSONALIZATION, payload).version == version


# --------------------------------------------------------------------------------------------
# The Cortex-M4F firmware in QEMU: RAM-backed slots that survive a board reset
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qemu_elf() -> Path:
    """The device firmware, brought up to date (`make` is incremental)."""
    from ecgedge.transports.qemu import BUILD_COMMAND, QEMU, default_elf

    if shutil.which(QEMU) is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc (Debian: apt-get install "
                    "qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(BUILD_COMMAND, cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return default_elf()


def test_qemu_push_survives_a_board_reset_and_reset_personalization_too(
        qemu_elf: Path, counts: np.ndarray) -> None:
    part = counts[: 20 * 360]  # 20 s: the QEMU UART takes about 40 kB/s
    with ecgedge.connect(f"qemu://{qemu_elf}?key={KEY.hex()}&monitor=1", timeout=3) as dev:
        assert p.Capability.HEAD_PACKAGES in dev.info().capabilities
        factory = _classes(dev, part)
        assert set(factory) != {int(p.BeatClass.V)}
        assert dev.push_head(_boosted(p.BeatClass.V), key=KEY).head_version == 1

        def reset() -> U.ModelInfo:
            link = dev.transport
            assert isinstance(link, QemuTransport)
            dev._run(link.system_reset())
            time.sleep(1.0)  # the firmware boots (it drops bytes until its UART is up)
            return dev.model_info()

        info = reset()
        assert (info.state, info.head_version, info.active_slot) == \
            (U.PersonalizationState.PUSHED, 1, "A")
        assert set(_classes(dev, part)) == {int(p.BeatClass.V)}
        _assert_refused(dev, ErrorCode.AUTH, lambda: dev.push_head(_boosted(p.BeatClass.S),
                                                                   key=bytes(32)), [
            int(p.BeatClass.V)] * len(factory), part)
        dev.reset_personalization(key=KEY)
        info = reset()
        assert (info.state, info.head_version, info.max_version) == \
            (U.PersonalizationState.FACTORY, 0, 2)
        assert _classes(dev, part) == factory


def test_sdk_constants_and_layouts_mirror_ecg_update_h() -> None:
    text = (Path(__file__).resolve().parents[1] / "firmware" / "include" / "ecg" /
            "ecg_update.h").read_text()
    c = {m[0]: int(m[1], 0) for m in re.findall(r"#define (ECG_UPDATE_\w+) (0x[0-9A-Fa-f]+|\d+)u",
                                                text)}
    assert c["ECG_UPDATE_MAGIC"] == U.MAGIC
    assert c["ECG_UPDATE_FORMAT"] == U.FORMAT
    assert c["ECG_UPDATE_HEADER_LEN"] == U.HEADER_LEN == p.PackageHeader.sizeof()
    assert c["ECG_UPDATE_CHUNK_MAX"] == U.CHUNK_MAX
    assert c["ECG_UPDATE_LABEL_LEN"] == U.LABEL_LEN
    assert c["ECG_UPDATE_MODEL_INFO_LEN"] == p.ModelInfo.sizeof() == 18
    assert c["ECG_UPDATE_CHUNK_RESULT_LEN"] == p.ChunkResult.sizeof() == 4
    assert p.PackageCommit.sizeof() == U.TAG_LEN == 32
    # a full chunk still fits one BLE notification (§1)
    assert p.wire_len(4 + U.CHUNK_MAX) <= p.MAX_WIRE_LEN


def test_qemu_labels_train_the_same_head_as_the_virtual_device(qemu_elf: Path,
                                                                counts: np.ndarray) -> None:
    """On-device training on the Cortex-M4 image: the µ-trainer's float arithmetic gives the
    bytes the host build gives, so both devices emit the same classes afterwards."""
    part = counts  # 40 s: with fewer labels the trainer's pull to the factory head flips no beat

    def train(dev: ecgedge.Device) -> tuple[Any, list[int], list[int]]:
        beats = dev.inject(part).beats
        factory = [int(b.beat_class) for b in beats]
        idx = np.array([b.index for b in beats])
        info = dev.personalize(idx, np.full(len(idx), int(p.BeatClass.S)), key=KEY)
        return info, factory, _classes(dev, part)

    with ecgedge.connect(f"qemu://{qemu_elf}?key={KEY.hex()}", timeout=3) as dev:
        info = dev.info()
        assert p.Capability.PERSONALIZE_LABELS in info.capabilities
        q_info, q_factory, q_after = train(dev)
    # the virtual device set up as the firmware is (its notch: the QEMU image's mains)
    with ecgedge.connect(_url() + f"&mains={info.mains_hz}", backend="inprocess") as dev:
        assert dev.info().gain_uv_per_count == info.gain_uv_per_count
        s_info, s_factory, s_after = train(dev)
    assert q_factory == s_factory
    assert (q_info.state, q_info.head_version) == (U.PersonalizationState.TRAINED, 1)
    assert q_info.trainer_labelled == s_info.trainer_labelled == len(q_factory)
    assert q_after.count(int(p.BeatClass.S)) > q_factory.count(int(p.BeatClass.S))
    assert q_after == s_after
