"""Rhythm alerts: the C engine's own tests (tests/c/test_alerts.c) under ASan/UBSan, the wire
layouts (property-based), and the whole path on the virtual device: beats -> engine -> queue ->
ALERTS_PULL pages -> `Device.alerts`, acknowledgement, thresholds, notices, and nothing lost across
a disconnect.

The device is fed a synthetic ECG whose beats are placed by hand (triangular 1.2 mV QRS-like
pulses), so every expected pause, asystole and rate follows from where the pulses were put.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecgedge
from ecgedge import protocol as p
from ecgedge.alerts import Alert, AlertFlag, AlertType, Severity
from ecgedge.errors import DeviceError
from ecgedge.protocol import ErrorCode, FrameType
from support import CORE_SOURCES, ROOT, build_sanitized, run_c_tests

C_TEST = ROOT / "tests" / "c" / "test_alerts.c"
FS = 360


# --------------------------------------------------------------------------------------------
# C engine
# --------------------------------------------------------------------------------------------


def test_alert_engine_c_tests_pass_under_address_and_undefined_behaviour_sanitizers(
        tmp_path: Path) -> None:
    run_c_tests(build_sanitized(tmp_path / "test_alerts", [*CORE_SOURCES, C_TEST], timeout=300),
                timeout=60)


# --------------------------------------------------------------------------------------------
# Wire layouts
# --------------------------------------------------------------------------------------------

records = st.fixed_dictionaries(dict(
    id=st.integers(0, 2**32 - 1), episode=st.integers(0, 2**32 - 1), type=st.integers(0, 255),
    severity=st.integers(0, 255), flags=st.integers(0, 255),
    start_index=st.integers(0, 2**32 - 1), end_index=st.integers(0, 2**32 - 1),
    time_us=st.integers(0, 2**64 - 1), value=st.integers(0, 65535), count=st.integers(0, 65535)))


@settings(max_examples=60, deadline=None)
@given(recs=st.lists(records, max_size=p.ALERTS_PER_PAGE), extra=st.integers(0, 3),
       pending=st.integers(0, 65535))
def test_alert_pages_round_trip_and_longer_records_of_a_newer_device_are_read(
        recs: list[dict[str, int]], extra: int, pending: int) -> None:
    page = dict(last_id=9, queued=len(recs), dropped=1, max_severity=4, pending=pending,
                n=len(recs), record_len=p.ALERT_RECORD_LEN + extra, records=recs)
    body = p.AlertsPage.build(page)
    assert len(body) == 15 + len(recs) * (p.ALERT_RECORD_LEN + extra)
    got = p.AlertsPage.parse(body)
    assert [dict((k, r[k]) for k in rec) for r, rec in zip(got.records, recs)] == recs
    assert (got.pending, got.n) == (pending, len(recs))


def test_alert_types_and_severities_a_newer_device_adds_are_kept_as_plain_ints() -> None:
    rec = dict(id=7, episode=3, type=int(AlertType.VT), severity=int(Severity.CRITICAL), flags=1,
               start_index=10, end_index=20, time_us=0, value=180, count=5)
    known = Alert.from_fields(SimpleNamespace(**rec), fs=FS)
    assert known.type is AlertType.VT and known.severity is Severity.CRITICAL
    newer = Alert.from_fields(SimpleNamespace(**{**rec, "type": 200, "severity": 9}), fs=FS)
    assert (newer.type, newer.severity) == (200, 9)
    assert not isinstance(newer.type, AlertType) and not isinstance(newer.severity, Severity)


@settings(max_examples=200, deadline=None)
@given(ftype=st.sampled_from([FrameType.ALERTS_PULL, FrameType.ALERTS_ACK,
                              FrameType.ALERTS_CONFIGURE, FrameType.ALERT_NOTICE]),
       data=st.binary(max_size=40))
def test_alert_payload_parsers_accept_or_refuse_with_length_never_crash(
        ftype: FrameType, data: bytes) -> None:
    need = {FrameType.ALERTS_PULL: 5, FrameType.ALERTS_ACK: 4, FrameType.ALERTS_CONFIGURE: 22,
            FrameType.ALERT_NOTICE: 11}[ftype]
    try:
        p.parse_payload(ftype, data)
    except p.ProtocolError as e:
        assert e.code == ErrorCode.LENGTH and len(data) < need
    else:
        assert len(data) >= need


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=p.MAX_PAYLOAD - 2))
def test_alert_page_parser_refuses_truncated_or_short_record_pages_with_length(
        body: bytes) -> None:
    payload = p.build_response(FrameType.ALERTS_PULL, 0, body)
    try:
        r = p.parse_response(payload)
    except p.ProtocolError as e:
        assert e.code == ErrorCode.LENGTH
        return
    if body:
        n, rl = body[13] if len(body) > 13 else 0, body[14] if len(body) > 14 else 0
        assert len(body) >= 15 and rl >= p.ALERT_RECORD_LEN and len(body) >= 15 + n * rl
        assert len(r.result.records) == n


def test_a_page_whose_records_are_shorter_than_31_bytes_is_malformed() -> None:
    body = bytes(13) + bytes([1, 30]) + bytes(30)
    with pytest.raises(p.ProtocolError) as e:
        p.parse_response(p.build_response(FrameType.ALERTS_PULL, 0, body))
    assert e.value.code == ErrorCode.LENGTH


# --------------------------------------------------------------------------------------------
# On the virtual device
# --------------------------------------------------------------------------------------------


def pulses(beat_times_s: list[float], total_s: float) -> np.ndarray:
    """Millivolts: a 1.2 mV, 58 ms triangular pulse at each time (360 Hz)."""
    x = np.zeros(int(total_s * FS))
    k = np.arange(-10, 11)
    for t in beat_times_s:
        i = int(round(t * FS))
        x[i + k] += 1.2 * (1.0 - np.abs(k) / 10.0)
    return x


def regular(t0: float, t1: float, rr: float = 0.8) -> list[float]:
    return [float(t) for t in np.arange(t0, t1 - 1e-9, rr)]


#: 3.4 s pause ending at 22.8 s, 7.2 s without beats from 29.2 to 36.4 s (asystole).
PAUSE_ASYSTOLE = regular(1.0, 19.4 + 0.8) + regular(22.8, 29.2 + 0.8) + regular(36.4, 50.0)


def inject(dev: ecgedge.Device, beat_times_s: list[float], total_s: float) -> None:
    rep = dev.inject(pulses(beat_times_s, total_s), units="mV")
    assert len(rep.beats) >= len(beat_times_s) - 2  # the detector found the pulses


def test_pause_and_asystole_are_pulled_with_the_sample_indices_of_the_pulses() -> None:
    with ecgedge.connect("sim://?speed=max") as dev:
        assert p.Capability.ALERTS in dev.info().capabilities
        inject(dev, PAUSE_ASYSTOLE, 52.0)
        alerts = dev.alerts.pull()
    by_type: dict[object, list[Alert]] = {}
    for a in alerts:
        by_type.setdefault(a.type, []).append(a)
    [pause] = by_type[AlertType.PAUSE]
    assert pause.onset and pause.ended and pause.severity == Severity.URGENT
    assert pause.start_index == pytest.approx(19.4 * FS, abs=3)
    assert pause.end_index == pytest.approx(22.8 * FS, abs=3)
    assert pause.value == pytest.approx(3400, abs=10)  # ms
    onset, end = by_type[AlertType.ASYSTOLE]
    assert onset.flags == AlertFlag.ONSET and end.flags == AlertFlag.END
    assert end.episode == onset.id < end.id
    assert onset.start_index == pytest.approx(29.2 * FS, abs=3)
    assert end.end_index == pytest.approx(36.4 * FS, abs=3)
    assert end.value == pytest.approx(7200, abs=10)
    assert onset.severity == Severity.CRITICAL
    assert [a.id for a in alerts] == sorted(a.id for a in alerts)
    assert AlertType.VT not in by_type and AlertType.AF not in by_type


def test_pull_pages_through_more_records_than_one_frame_holds_and_ack_frees_them() -> None:
    # 10 pauses of 3 s: 10 one-record events, more than the 7 of one ALERTS_PULL page
    times: list[float] = []
    t = 1.0
    for _ in range(10):
        times += regular(t, t + 4.0)
        t = times[-1] + 3.0
    times += regular(t, t + 4.0)
    with ecgedge.connect("sim://?speed=max") as dev:
        inject(dev, times, times[-1] + 2.0)
        alerts = dev.alerts.pull()
        pauses = [a for a in alerts if a.type == AlertType.PAUSE]
        assert len(pauses) == 10
        assert all(a.value == pytest.approx(3000, abs=10) for a in pauses)
        assert dev.alerts.status().queued == len(alerts)
        status = dev.alerts.ack(alerts[4].id)
        assert status.queued == len(alerts) - 5
        assert [a.id for a in dev.alerts.pull()] == [a.id for a in alerts[5:]]
        assert dev.alerts.pull(after=0) == alerts[5:]  # the acked ones are gone for good
        dev.alerts.ack()
        assert dev.alerts.pull(after=0) == []


def test_thresholds_are_set_read_back_and_refused_out_of_range_without_change() -> None:
    with ecgedge.connect("sim://?speed=max") as dev:
        base = dev.alerts.config()
        new = dev.alerts.configure(pause_ms=3500, tachy_bpm=140)
        assert (new.pause_ms, new.tachy_bpm) == (3500, 140)
        with pytest.raises(DeviceError) as e:
            dev.alerts.configure(tachy_bpm=30)  # below brady_bpm and its range
        assert e.value.code in (ErrorCode.RANGE, ErrorCode.CONFIG)
        assert dev.alerts.config() == new
        # a 3.4 s pause is below the new 3.5 s limit: no PAUSE record
        inject(dev, PAUSE_ASYSTOLE[:30], 29.0)
        assert not [a for a in dev.alerts.pull() if a.type == AlertType.PAUSE]
        assert dev.alerts.configure(base) == base
        off = dev.alerts.configure(base.with_enabled(set(AlertType) - {AlertType.PAUSE}))
        assert AlertType.PAUSE not in off.enabled


def test_a_notice_announces_new_records_while_injecting() -> None:
    with ecgedge.connect("sim://?speed=max") as dev:
        seen = []
        remove = dev.alerts.on_notice(seen.append)
        inject(dev, PAUSE_ASYSTOLE, 52.0)
        remove()
        assert seen, "no ALERT_NOTICE arrived"
        last = seen[-1]
        alerts = dev.alerts.pull()
        assert last.last_id == alerts[-1].id and last.queued == len(alerts)
        assert last.max_severity == Severity.CRITICAL


class TcpSim:
    """`python -m ecgedge.sim --inject-only --tcp 0`: one virtual device, many connections."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ecgedge.sim", "--inject-only", "--tcp", "0", "--fs", str(FS)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.search(r"(socket://\S+)", line)
        if m is None:
            self.proc.kill()
            pytest.fail(f"the simulator announced no address: {line!r}")
        self.url = m.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def tcp_sim() -> Iterator[TcpSim]:
    s = TcpSim()
    yield s
    s.stop()


def test_alerts_not_acknowledged_survive_a_disconnect_and_are_all_pulled_after_reconnecting(
        tcp_sim: TcpSim) -> None:
    with ecgedge.connect(tcp_sim.url) as dev:
        inject(dev, PAUSE_ASYSTOLE, 52.0)
        before = dev.alerts.pull()
        assert len(before) >= 3
    # disconnected: the device kept its queue; a new connection is told and gets everything
    with ecgedge.connect(tcp_sim.url) as dev:
        assert dev.alerts.last_notice is not None  # sent on connect: records are waiting
        assert dev.alerts.last_notice.queued == len(before)
        after = dev.alerts.pull()
        assert after == before
        dev.alerts.ack(after[1].id)
    with ecgedge.connect(tcp_sim.url) as dev:
        assert dev.alerts.pull() == before[2:]


def test_cli_prints_the_queued_alerts_as_json_and_ack_frees_them(
        tcp_sim: TcpSim, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from ecgedge.cli import main

    with ecgedge.connect(tcp_sim.url) as dev:
        inject(dev, PAUSE_ASYSTOLE, 52.0)
        queued = dev.alerts.pull()
    capsys.readouterr()
    assert main(["alerts", tcp_sim.url, "--json"]) == 0
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert [d["id"] for d in lines] == [a.id for a in queued]
    assert {d["type"] for d in lines} >= {"PAUSE", "ASYSTOLE"}
    assert main(["alerts", tcp_sim.url, "--json", "--ack"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(queued)
    assert main(["alerts", tcp_sim.url, "--json"]) == 0
    assert capsys.readouterr().out.strip() == ""
    assert main(["alerts", tcp_sim.url, "--follow", "--seconds", "0.5"]) == 0  # table mode


def test_the_cortex_m4_firmware_in_qemu_raises_the_same_alerts_as_the_virtual_device() -> None:
    if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
        if os.environ.get("CI"):
            pytest.fail("CI must have qemu-system-arm and arm-none-eabi-gcc")
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    x = pulses(PAUSE_ASYSTOLE, 52.0)
    got = {}
    for url in ("sim://?speed=max", "qemu://"):
        with ecgedge.connect(url, timeout=5.0) as dev:
            dev.configure(sample_rate_hz=FS)
            dev.inject(x, units="mV")
            got[url] = [(a.id, a.episode, a.type, a.flags, a.start_index, a.end_index, a.value,
                         a.count) for a in dev.alerts.pull()]
    assert got["qemu://"] == got["sim://?speed=max"]
    assert len(got["qemu://"]) >= 3


def test_the_receiver_turns_notices_into_status_events_and_counts_short_ones_malformed() -> None:
    from ecgedge.alerts import AlertStatus
    from ecgedge.device import Receiver

    rx = Receiver()
    good = p.build_payload(FrameType.ALERT_NOTICE,
                           dict(last_id=12, queued=3, dropped=2, max_severity=4))
    out = rx.feed(p.encode_frame(FrameType.ALERT_NOTICE, 0, good)
                  + p.encode_frame(FrameType.ALERT_NOTICE, 1, good[:10])
                  + p.encode_frame(FrameType.ALERT_NOTICE, 3, good))
    notices = [e for e in out if isinstance(e, AlertStatus)]
    assert [(n.last_id, n.queued, n.dropped, n.max_severity) for n in notices] == [
        (12, 3, 2, Severity.CRITICAL)] * 2
    assert rx.malformed == 1
    # like other streams, a malformed frame is not taken: seq 1 (malformed) and 2 show as lost
    assert rx.tracker.gaps.get(FrameType.ALERT_NOTICE) == 2
