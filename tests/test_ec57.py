"""The EC57 beat-by-beat scorer (`ecgedge.validation.ec57`) on hand-built cases and properties.

Expected counts are worked out here from the EC57 rules (150 ms window, one-to-one pairing,
beat symbols only, VF excluded, scoring from the start of the test period), not taken from the
scorer. Beat symbols are spelled out as in ../shared/data/README.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgedge.validation.ec57 import Comparison, Reference, compare

BEATS = list("NLRBAaJSVrFejnE/fQ?")  # WFDB beat symbols (README)
NON_BEATS = list('+~|x"!')  # rhythm, noise, comment, flutter wave...: not beats
RATES_HZ = [125, 128, 250, 256, 360, 500, 1000]


def score(ann: list[tuple[int, str]], test: list[int], fs: float, start: int = 0,
          end: int | None = None) -> Comparison:
    """Score `test` against annotations given as (sample, symbol), end defaulting past both."""
    ann = sorted(ann, key=lambda a: a[0])
    last = max([s for s, _ in ann] + list(test) + [0])
    end = last + 1 if end is None else end
    ref = Reference.from_annotations([s for s, _ in ann], [y for _, y in ann], end)
    return compare(ref, test, fs, start=start, end=end)


def normal(samples: list[int]) -> list[tuple[int, str]]:
    return [(s, "N") for s in samples]


def within_window(fs: float) -> int:
    """Largest whole number of samples not exceeding 150 ms."""
    return math.floor(0.150 * fs)


def beyond_window(fs: float) -> int:
    """A whole number of samples clearly beyond 150 ms (at least 160 ms)."""
    return math.ceil(0.160 * fs)


# --- hand-built cases ----------------------------------------------------------------------------

def test_exact_detections_are_all_true_positives() -> None:
    beats = [1000, 1300, 1650, 2000]
    c = score(normal(beats), beats, 360)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (4, 0, 0)
    assert c.pairs.tolist() == [[b, b] for b in beats]
    assert c.counts.se == c.counts.ppv == c.counts.f1 == 100.0


@pytest.mark.parametrize("fs", [360, 250])
@pytest.mark.parametrize("sign", [-1, 1])
def test_detection_within_150_ms_matches(fs: int, sign: int) -> None:
    beat = 10 * fs
    c = score(normal([beat]), [beat + sign * within_window(fs)], fs)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 0, 0)


@pytest.mark.parametrize("fs", [360, 250])
@pytest.mark.parametrize("sign", [-1, 1])
def test_detection_beyond_150_ms_is_a_false_positive_and_the_beat_a_miss(fs: int,
                                                                          sign: int) -> None:
    beat = 10 * fs
    detection = beat + sign * beyond_window(fs)
    c = score(normal([beat]), [detection], fs)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (0, 1, 1)
    assert c.false_negatives.tolist() == [beat]
    assert c.false_positives.tolist() == [detection]


def test_two_detections_near_one_beat_pair_one_to_one_with_the_nearest() -> None:
    fs, beat = 360, 5000
    c = score(normal([beat]), [beat - 20, beat + 10], fs)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 1, 0)
    assert c.pairs.tolist() == [[beat, beat + 10]]
    assert c.false_positives.tolist() == [beat - 20]


def test_one_detection_between_two_close_beats_matches_only_the_nearer() -> None:
    fs = 360
    c = score(normal([5000, 5060]), [5040], fs)  # both beats within 150 ms of the detection
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 0, 1)
    assert c.pairs.tolist() == [[5060, 5040]]


def test_detections_inside_vf_are_not_false_positives_and_vf_beats_not_misses() -> None:
    fs = 360
    ann = [(1000, "N"), (2000, "["), (2100, "!"), (2500, "V"), (3000, "!"), (4000, "]"),
           (5000, "N")]
    inside_vf = [2100, 2600, 3900]
    c = score(ann, [1000, *inside_vf, 5000], fs)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (2, 0, 0)


def test_detection_outside_vf_still_counts_as_false_positive() -> None:
    fs = 360
    ann = [(1000, "N"), (2000, "["), (4000, "]"), (6000, "N")]
    c = score(ann, [1000, 3000, 5000, 6000], fs)  # 5000 is after the VF episode
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (2, 1, 0)
    assert c.false_positives.tolist() == [5000]


def test_unterminated_vf_runs_to_the_end_of_the_record() -> None:
    fs = 360
    ann = [(1000, "N"), (2000, "["), (2500, "V")]
    c = score(ann, [1000, 2400, 3000], fs, end=4000)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 0, 0)


def test_nothing_before_the_start_is_scored() -> None:
    fs = 360
    start = 300 * fs
    ann = normal([start - 1000, start - 400, start + 500, start + 900])
    # a miss and a false detection in the learning period; both scored beats detected
    c = score(ann, [start - 700, start + 500, start + 900], fs, start=start)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (2, 0, 0)


def test_beat_at_the_start_is_scored_and_one_just_before_is_not() -> None:
    fs = 360
    start = 300 * fs
    c = score(normal([start - 1, start + 400]), [start + 400], fs, start=start)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 0, 0)
    c = score(normal([start, start + 400]), [start + 400], fs, start=start)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 0, 1)


def test_detection_just_before_the_start_matches_the_first_scored_beat() -> None:
    fs = 360
    start = 300 * fs
    c = score(normal([start + 10, start + 400]), [start - 20, start + 400], fs, start=start)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (2, 0, 0)
    assert c.pairs.tolist() == [[start + 10, start - 20], [start + 400, start + 400]]


def test_detection_of_a_learning_period_beat_just_after_the_start_is_not_counted() -> None:
    fs = 360
    start = 300 * fs
    # the beat at start - 10 is not scored; its detection, 5 samples after the start, fits it
    # better than the next (scored) beat, so it is neither a match nor a false positive
    c = score(normal([start - 10, start + 400]), [start + 5, start + 400], fs, start=start)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 0, 0)


def test_scoring_stops_at_the_end_sample_inclusive() -> None:
    fs = 360
    c = score(normal([1000, 2000, 3000, 4000]), [1000, 2500, 3500], fs, end=3000)
    # 2000 and 3000 (at the end) are missed, 2500 is false; 3500 and 4000 are after the end
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (1, 1, 2)
    c = score(normal([1000, 2000, 4000]), [1000, 2000, 3000, 3500], fs, end=3000)
    # 3000 (at the end) is false; 3500 and 4000 are after the end
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (2, 1, 0)


@pytest.mark.parametrize("symbol", BEATS)
def test_every_beat_symbol_is_a_reference_beat(symbol: str) -> None:
    c = score([(1000, symbol)], [], 360)
    assert c.counts.fn == 1


def test_non_beat_annotations_are_ignored() -> None:
    fs = 360
    ann = [(500, "+"), (1000, "N"), (1400, "~"), (1800, '"'), (2000, "N"), (2400, "|"),
           (2800, "x"), (3000, "N")]
    c = score(ann, [1000, 2000, 3000], fs)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (3, 0, 0)
    # a detection at a non-beat annotation is not a match
    c = score(ann, [1000, 1400, 2000, 3000], fs)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (3, 1, 0)


def test_undefined_percentages_are_nan() -> None:
    c = score([(1000, "+")], [], 360)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (0, 0, 0)
    assert math.isnan(c.counts.se) and math.isnan(c.counts.ppv) and math.isnan(c.counts.f1)


# --- properties ----------------------------------------------------------------------------------

@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, list[tuple[int, str]], tuple[int, int], int]:
    """A sampling rate, annotations (beats, non-beats, one VF episode), the VF episode, a start.

    No reference beat lies within 200 ms of the VF episode, so detections inside VF can only be
    unpaired (and then uncounted).
    """
    fs = draw(st.sampled_from(RATES_HZ))
    length = 60 * fs
    margin = math.ceil(0.200 * fs)
    vf_on = draw(st.integers(0, length - fs))
    vf_off = vf_on + draw(st.integers(1, 5 * fs))
    samples = draw(st.lists(st.integers(0, length), max_size=60, unique=True))
    ann: list[tuple[int, str]] = []
    for s in samples:
        symbol = draw(st.sampled_from(BEATS + NON_BEATS))
        if vf_on - margin <= s <= vf_off + margin:
            if not vf_on < s < vf_off:
                continue
            # annotations inside VF, even beat labels, are not reference beats
        ann.append((s, symbol))
    ann += [(vf_on, "["), (vf_off, "]")]
    start = draw(st.integers(0, length))
    return fs, sorted(ann), (vf_on, vf_off), start


def reference_beats(ann: list[tuple[int, str]], vf: tuple[int, int], start: int) -> list[int]:
    return [s for s, y in ann if y in BEATS and s >= start and not vf[0] <= s <= vf[1]]


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.data())
def test_every_scored_reference_beat_is_either_found_or_missed(
        scenario: tuple[int, list[tuple[int, str]], tuple[int, int], int],
        data: st.DataObject) -> None:
    fs, ann, vf, start = scenario
    test = sorted(data.draw(st.lists(st.integers(0, 60 * fs), max_size=80, unique=True)))
    c = score(ann, test, fs, start=start)
    assert c.counts.tp + c.counts.fn == len(reference_beats(ann, vf, start))


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.data())
def test_every_scored_detection_outside_vf_is_either_true_or_false(
        scenario: tuple[int, list[tuple[int, str]], tuple[int, int], int],
        data: st.DataObject) -> None:
    fs, ann, vf, start = scenario
    margin = math.ceil(0.200 * fs)  # away from the learning-period boundary rules
    test = sorted(data.draw(st.lists(
        st.integers(0, 60 * fs).filter(lambda t: abs(t - start) > margin),
        max_size=80, unique=True)))
    c = score(ann, test, fs, start=start)
    scored = [t for t in test if t >= start and not vf[0] <= t <= vf[1]]
    assert c.counts.tp + c.counts.fp == len(scored)


@st.composite
def rhythms(draw: st.DrawFn, min_rr_s: float) -> tuple[int, list[int]]:
    """A sampling rate and beat positions 1 s in, with RR intervals of min_rr_s to 2 s."""
    fs = draw(st.sampled_from(RATES_HZ))
    rr = draw(st.lists(st.integers(math.ceil(min_rr_s * fs), 2 * fs), min_size=1, max_size=60))
    return fs, (fs + np.cumsum(rr)).tolist()


@settings(max_examples=300, deadline=None)
@given(rhythms(min_rr_s=0.320), st.data())
def test_perfect_detections_score_100_percent(rhythm: tuple[int, list[int]],
                                              data: st.DataObject) -> None:
    fs, beats = rhythm
    start = data.draw(st.integers(0, beats[-1]))
    c = score(normal(beats), beats, fs, start=start)
    assert (c.counts.fp, c.counts.fn) == (0, 0)
    assert c.counts.tp == sum(b >= start for b in beats)
    assert c.counts.se == c.counts.ppv == 100.0


@settings(max_examples=300, deadline=None)
@given(rhythms(min_rr_s=0.400), st.data())
def test_detections_shifted_by_up_to_150_ms_stay_matched(rhythm: tuple[int, list[int]],
                                                         data: st.DataObject) -> None:
    fs, beats = rhythm
    w = within_window(fs)
    shifts = data.draw(st.lists(st.integers(-w, w), min_size=len(beats), max_size=len(beats)))
    start = data.draw(st.integers(0, beats[-1]))
    test = [b + d for b, d in zip(beats, shifts)]
    c = score(normal(beats), test, fs, start=start)
    assert (c.counts.tp, c.counts.fp, c.counts.fn) == (sum(b >= start for b in beats), 0, 0)
