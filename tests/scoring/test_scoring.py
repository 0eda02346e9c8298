"""Attribution, keyframes, segments and boxes on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videocam.scoring import (
    Evidence,
    Segment,
    cam_box,
    find_evidence,
    find_segments,
    frame_attribution,
    resize_bilinear,
    scale_cams,
    score_video,
    select_keyframes,
)


def test_scale_is_one_factor_for_the_whole_video() -> None:
    cams = np.zeros((3, 2, 2), np.float32)
    cams[0] = 1.0
    cams[1, 0, 0] = 4.0
    scaled, factor = scale_cams(cams)
    assert factor == 4.0
    np.testing.assert_array_equal(scaled[0], np.full((2, 2), 0.25))
    assert scaled.max() == 1.0
    np.testing.assert_allclose(frame_attribution(scaled), [0.25, 0.25, 0.0])


def test_scale_all_zero_and_negative() -> None:
    scaled, factor = scale_cams(np.zeros((2, 3, 3)))
    assert factor == 1.0
    assert not scaled.any()
    with pytest.raises(ValueError, match=">= 0"):
        scale_cams(-np.ones((1, 2, 2)))


def test_keyframes_respect_min_gap() -> None:
    attribution = np.array([0.1, 0.9, 0.85, 0.2, 0.8, 0.7, 0.05, 0.6])
    times = np.arange(8) * 0.5
    # Gap 1 s: 0.9 @0.5 s, then 0.85 @1.0 s is too close, 0.8 @2.0 s ok, 0.7 @2.5 s too close,
    # 0.6 @3.5 s ok.
    assert select_keyframes(attribution, times, k=5, min_gap_s=1.0).tolist() == [1, 4, 7]
    assert select_keyframes(attribution, times, k=2, min_gap_s=0.0).tolist() == [1, 2]
    chosen = select_keyframes(attribution, times, k=8, min_gap_s=0.75)
    picked = np.sort(times[chosen])
    assert np.all(np.diff(picked) >= 0.75)


def test_keyframes_floor() -> None:
    attribution = np.array([1.0, 0.0, 0.5, 0.0, 0.19, 0.0, 0.2])
    times = np.arange(7.0)
    assert select_keyframes(attribution, times, 5, 1.0, floor=0.2).tolist() == [0, 2, 6]
    assert select_keyframes(attribution, times, 5, 1.0).tolist() == [0, 2, 6, 4]


def test_keyframes_ties_and_zero() -> None:
    assert select_keyframes(np.array([0.5, 0.5, 0.0]), np.arange(3.0), 3, 0).tolist() == [0, 1]


def test_segments_with_hysteresis() -> None:
    a = np.array([0, 0, 0.3, 0.6, 1.0, 0.6, 0.3, 0, 0, 0.3, 0, 0.7, 0.8, 0])
    # median 0.3, peak 1.0: high 0.65, low 0.475 -> runs >= 0.475: [3..5] (has 1.0), [11..12].
    assert find_segments(a) == [
        Segment(3, 5, 4, pytest.approx((0.6 + 1.0 + 0.6) / 3)),
        Segment(11, 12, 12, pytest.approx(0.75)),
    ]
    assert find_segments(np.ones(5)) == []
    assert find_segments(a, min_len=3) == [Segment(3, 5, 4, pytest.approx(2.2 / 3))]


def test_resize_matches_torch() -> None:
    x = np.random.default_rng(1).random((2, 5, 7)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x[None]), size=(23, 31), mode="bilinear", align_corners=False
    )[0].numpy()
    np.testing.assert_allclose(resize_bilinear(x, (23, 31)), expected, atol=1e-5)


def test_box_around_largest_region_in_original_pixels() -> None:
    cam = np.zeros((8, 8), np.float32)
    cam[2:4, 5:7] = 1.0  # larger blob
    cam[6, 0] = 0.9  # small blob
    x0, y0, x1, y1 = cam_box(cam, (80, 160), threshold=0.5)
    # Model cell = 10 px tall, 20 px wide; the blob covers rows 2-3, columns 5-6.
    assert 95 <= x0 <= 100
    assert 140 <= x1 <= 145
    assert 15 <= y0 <= 20
    assert 40 <= y1 <= 45
    assert cam_box(np.zeros((4, 4)), (10, 10)) == (-1, -1, -1, -1)


# --- evidence: keyframes and segments where the model sees the target ----------------------


def _evidence(score: np.ndarray, fps: float = 4.0, **rule: float) -> Evidence:
    """find_evidence with the analysis's defaults (floor 0.25, ratio 10), frames ``fps`` apart."""
    settings = {"floor": 0.25, "ratio": 10.0, **rule}
    return find_evidence(score, np.arange(len(score)) / fps, **settings)


def test_evidence_weak_plateau() -> None:
    """The issue's case: an ImageNet class at 0.002-0.005 for 4 s, peaking at 0.021 for 1 s,
    against 0.0001 elsewhere (10 s at 4 fps)."""
    score = np.full(40, 1e-4)
    score[12:28] = [0.002, 0.005] * 8  # on screen, 4 s
    score[16:20] = 0.021  # the best second
    evidence = _evidence(score)
    # Median 0.0001 (24 of 40 frames): pass at min(0.25 x 0.021, 10 x 0.0001) = 0.001; a run
    # counts when it reaches min(0.5 x 0.021, 100 x 0.0001) = 0.01.
    assert evidence.baseline == pytest.approx(1e-4)
    assert evidence.threshold == pytest.approx(1e-3)
    assert evidence.enter == pytest.approx(0.01)
    assert np.flatnonzero(evidence.mask).tolist() == list(range(12, 28))
    # The rule before (0.25 x peak) kept the best second only.
    before = _evidence(score, ratio=0.0)
    assert before.threshold == pytest.approx(0.25 * 0.021)
    assert np.flatnonzero(before.mask).tolist() == list(range(16, 20))
    assert evidence.numbers() == {
        "evidence_floor": 0.25,
        "evidence_ratio": 10.0,
        "evidence_baseline": evidence.baseline,
        "evidence_threshold": evidence.threshold,
        "evidence_enter": evidence.enter,
        "evidence_gap_s": 0.5,
        "frames_with_evidence": 16,
    }


def test_evidence_confident_peak_and_a_weaker_second_appearance() -> None:
    score = np.full(40, 1e-4)
    score[5:10] = [0.6, 0.8, 0.9, 0.85, 0.7]  # the class, confidently
    score[25:30] = 0.05  # again, 500 x the background but under a quarter of the peak
    evidence = _evidence(score)
    assert np.flatnonzero(evidence.mask).tolist() == [5, 6, 7, 8, 9, 25, 26, 27, 28, 29]
    # Pass at max(min(0.225, 1e-3), 0.01 x 0.9); enter at min(0.45, 100 x 1e-4).
    assert evidence.threshold == pytest.approx(0.009)
    assert evidence.enter == pytest.approx(0.01)
    # Scale-free: a sigmoid-like or a detection-mass-like scale gives the same frames.
    for factor in (0.5, 3.0):
        assert _evidence(score * factor).mask.tolist() == evidence.mask.tolist()
    # The peak alone would miss the second appearance.
    assert np.flatnonzero(_evidence(score, ratio=0.0).mask).tolist() == [5, 6, 7, 8, 9]


def test_evidence_confusion_on_a_busy_background_does_not_enter() -> None:
    """Where the class's probability is high everywhere (a racing car read into every car on a
    road: median 0.01), a bump to 0.2 (under half the peak of 0.6, 20 x the median) has no
    evidence although its frames pass the threshold; the stretch around the peak has."""
    score = np.full(30, 0.01)
    score[4:8] = [0.12, 0.4, 0.6, 0.3]
    score[18:22] = 0.2
    evidence = _evidence(score)
    assert evidence.threshold == pytest.approx(0.1)  # min(0.25 x 0.6, 10 x 0.01)
    assert evidence.enter == pytest.approx(0.3)  # min(0.5 x 0.6, 100 x 0.01)
    assert np.flatnonzero(evidence.mask).tolist() == [4, 5, 6, 7]


def test_evidence_flat_scores_all_or_nothing() -> None:
    # Flat: no stretch stands out, so the rule does not restrict (as floor x peak did).
    assert _evidence(np.full(12, 3e-4)).mask.all()
    assert _evidence(np.full(12, 0.7)).mask.all()
    # Noise within a factor 4 of its peak: every frame reaches 0.25 x the peak.
    noise = np.tile([1e-4, 2.5e-4, 4e-4, 1.5e-4], 5)
    assert _evidence(noise).mask.all()
    # The model never sees the target: no evidence, whatever the rule's levels.
    none = _evidence(np.zeros(8))
    assert not none.mask.any()
    assert none.threshold == 0.0
    assert none.peak == 0.0
    # The rule off: every frame, even at 0.
    assert _evidence(np.zeros(8), floor=0.0).mask.all()
    assert _evidence(noise, floor=0.0).threshold == 0.0


def test_evidence_bridges_short_dips_only() -> None:
    score = np.full(40, 1e-4)
    score[10:30] = 0.003
    score[12] = 0.02  # the peak, early in the stretch
    score[15] = 1e-4  # a one-frame dip: 0.5 s between passing frames at 4 fps, bridged
    score[20:23] = 1e-4  # a three-frame dip (1 s): not bridged
    evidence = _evidence(score)
    # Frames 23-29 pass but never reach the enter level (0.01) on their own: no evidence.
    assert np.flatnonzero(evidence.mask).tolist() == list(range(10, 20))
    assert not evidence.mask[23:30].any()
    # A longer gap bridged joins them; no gap bridged splits the first stretch at the dip.
    assert np.flatnonzero(_evidence(score, gap_s=1.0).mask).tolist() == list(range(10, 30))
    assert np.flatnonzero(_evidence(score, gap_s=0.0).mask).tolist() == list(range(10, 15))


def test_evidence_on_sigmoid_like_scores() -> None:
    """A multi-label sigmoid: around 0.03 where the object is absent, 0.6-0.95 where it is."""
    score = np.tile([0.02, 0.04, 0.03], 10)
    score[10:16] = [0.2, 0.6, 0.95, 0.9, 0.7, 0.12]
    evidence = _evidence(score)
    assert evidence.baseline == pytest.approx(0.03)
    assert evidence.threshold == pytest.approx(0.2375)  # min(0.25 x 0.95, 10 x 0.03)
    assert evidence.enter == pytest.approx(0.475)  # min(0.5 x 0.95, 100 x 0.03)
    assert np.flatnonzero(evidence.mask).tolist() == [11, 12, 13, 14]
    # A lower ratio lets the edges of the stretch in: 5 x 0.03 = 0.15 takes 0.2, not 0.12.
    assert np.flatnonzero(_evidence(score, ratio=5).mask).tolist() == [10, 11, 12, 13, 14]


def test_evidence_on_detection_mass() -> None:
    """A detector's detection mass: 0 without a detection of the target, else a sum of scores
    of at least the score threshold."""
    mass = np.zeros(12)
    mass[[2, 3, 5, 6]] = [0.9, 1.7, 0.8, 0.6]
    evidence = _evidence(mass, fps=5.0)
    # Median 0: every frame with a detection (of at least a hundredth of the peak) has evidence,
    # a frame without one (4) never, even inside a bridged gap.
    assert evidence.threshold == evidence.enter == pytest.approx(0.017)
    assert np.flatnonzero(evidence.mask).tolist() == [2, 3, 5, 6]
    # The target in most frames: the levels come from the peak (3.2): pass at 0.8, enter at 1.6.
    crowd = np.array([1.6, 1.6, 1.6, 1.6, 1.6, 1.6, 0.0, 0.0, 0.6, 3.2])
    evidence = _evidence(crowd, fps=5.0)
    assert (evidence.threshold, evidence.enter) == (pytest.approx(0.8), pytest.approx(1.6))
    assert np.flatnonzero(evidence.mask).tolist() == [0, 1, 2, 3, 4, 5, 9]


def test_evidence_never_below_a_hundredth_of_the_peak() -> None:
    """A class at 0.9 against a background of 1e-5: frames at 5e-4 are 50 x the background but
    under 1 % of the peak, negligible next to it; frames at 0.02 (2 %) count."""
    score = np.full(40, 1e-5)
    score[10:20] = 5e-4
    score[14:17] = [0.02, 0.9, 0.02]
    evidence = _evidence(score)
    assert evidence.threshold == pytest.approx(0.009)  # max(min(0.225, 1e-4), 0.01 x 0.9)
    assert np.flatnonzero(evidence.mask).tolist() == [14, 15, 16]
    # A floor under a hundredth lowers that bound with it.
    assert _evidence(score, floor=0.001).threshold == pytest.approx(0.0009)


def test_evidence_rejects_bad_settings() -> None:
    score, times = np.ones(4), np.arange(4.0)
    with pytest.raises(ValueError, match="floor"):
        find_evidence(score, times, floor=1.5, ratio=10)
    for ratio in (0.5, -1.0, np.inf):
        with pytest.raises(ValueError, match="ratio"):
            find_evidence(score, times, floor=0.25, ratio=ratio)
    with pytest.raises(ValueError, match="gap_s"):
        find_evidence(score, times, floor=0.25, ratio=10, gap_s=-1)
    with pytest.raises(ValueError, match="times_s has 3 frames"):
        find_evidence(score, times[:3], floor=0.25, ratio=10)


def test_keyframes_only_where_there_is_evidence() -> None:
    attribution = np.array([0.9, 0.2, 0.5, 0.45, 0.1, 0.3])
    times = np.arange(6.0)
    eligible = np.array([False, True, True, True, False, True])
    # Frame 0 has the highest attribution but no evidence; the floor (0.5 x) is relative to
    # the strongest eligible frame (0.5), so 0.2 is out and 0.3 is in.
    assert select_keyframes(attribution, times, 5, 0.0, floor=0.5, eligible=eligible).tolist() == [
        2,
        3,
        5,
    ]
    assert select_keyframes(attribution, times, 5, 0.0, floor=0.5).tolist() == [0, 2, 3]
    none = np.zeros(6, dtype=bool)
    assert select_keyframes(attribution, times, 5, 0.0, eligible=none).tolist() == []
    with pytest.raises(ValueError, match="eligible has 3 frames"):
        select_keyframes(attribution, times, 5, 0.0, eligible=eligible[:3])


def test_segments_only_where_there_is_evidence() -> None:
    a = np.array([0, 0, 0.3, 0.6, 1.0, 0.6, 0.3, 0, 0, 0.3, 0, 0.7, 0.8, 0])
    eligible = np.ones(len(a), dtype=bool)
    eligible[4] = False  # the peak frame: the run around it splits, and the peak is now 0.8
    # median 0.3, eligible peak 0.8: high 0.55, low 0.425 -> [3], [5], [11..12].
    assert find_segments(a, eligible=eligible) == [
        Segment(3, 3, 3, pytest.approx(0.6)),
        Segment(5, 5, 5, pytest.approx(0.6)),
        Segment(11, 12, 12, pytest.approx(0.75)),
    ]
    assert find_segments(a, eligible=np.zeros(len(a), dtype=bool)) == []


def test_score_video_keeps_keyframes_off_frames_without_evidence() -> None:
    """The reviewer's case: CAM mass on frames where the class's probability is 0.00."""
    cams = np.zeros((10, 2, 2), np.float32)
    cams[[0, 1]] = 1.0  # strong maps, no evidence (a taxi roof, a fence)
    cams[[5, 6]] = 0.8  # the class is there
    score = np.array([1e-4, 1e-4, 3e-4, 1e-4, 1e-4, 0.02, 0.018, 1e-4, 1e-4, 1e-4])
    times = np.arange(10.0)
    common = {"topk": 5, "min_gap_s": 0.0, "keyframe_floor": 0.2, "box_threshold": 0.5}
    rule = {"evidence_floor": 0.25, "evidence_ratio": 10.0}
    scores = score_video(cams, times, score, (20, 20), **rule, **common)
    assert np.flatnonzero(scores.evidence.mask).tolist() == [5, 6]
    assert scores.evidence.threshold == pytest.approx(1e-3)  # 3e-4 (frame 2) is not enough
    assert scores.keyframes.tolist() == [5, 6]
    assert [(s.start, s.end) for s in scores.segments] == [(5, 6)]
    off = {"evidence_floor": 0.0, "evidence_ratio": 10.0}
    before = score_video(cams, times, score, (20, 20), **off, **common)
    assert before.keyframes.tolist() == [0, 1, 5, 6]
    assert [(s.start, s.end) for s in before.segments] == [(0, 1), (5, 6)]
    np.testing.assert_array_equal(before.attribution, scores.attribution)  # unchanged
