"""Attribution, keyframes, segments and boxes on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videocam.scoring import (
    Segment,
    cam_box,
    evidence_mask,
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
    assert factor == 1.0 and not scaled.any()
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
    assert 95 <= x0 <= 100 and 140 <= x1 <= 145
    assert 15 <= y0 <= 20 and 40 <= y1 <= 45
    assert cam_box(np.zeros((4, 4)), (10, 10)) == (-1, -1, -1, -1)


# --- evidence: keyframes and segments where the model sees the target ----------------------


def test_evidence_is_relative_to_the_videos_peak_score() -> None:
    # An ImageNet-scale class: its probability peaks at 0.02.
    score = np.array([0.0, 0.001, 0.005, 0.02, 0.012, 0.0049])
    assert evidence_mask(score, 0.25).tolist() == [False, False, True, True, True, False]
    assert evidence_mask(score * 40, 0.25).tolist() == evidence_mask(score, 0.25).tolist()
    assert evidence_mask(score, 0.0).all()
    assert not evidence_mask(np.zeros(4), 0.25).any()  # the model never sees the target
    assert evidence_mask(np.zeros(4), 0.0).all()
    with pytest.raises(ValueError, match="floor"):
        evidence_mask(score, 1.5)


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
    score = np.array([0.0, 0.0001, 0.002, 0.0, 0.0, 0.02, 0.018, 0.0, 0.0, 0.0])
    times = np.arange(10.0)
    common = {"topk": 5, "min_gap_s": 0.0, "keyframe_floor": 0.2, "box_threshold": 0.5}
    scores = score_video(cams, times, score, (20, 20), evidence_floor=0.25, **common)
    assert np.flatnonzero(scores.evidence).tolist() == [5, 6]
    assert scores.keyframes.tolist() == [5, 6]
    assert [(s.start, s.end) for s in scores.segments] == [(5, 6)]
    before = score_video(cams, times, score, (20, 20), evidence_floor=0.0, **common)
    assert before.keyframes.tolist() == [0, 1, 5, 6]
    assert [(s.start, s.end) for s in before.segments] == [(0, 1), (5, 6)]
    np.testing.assert_array_equal(before.attribution, scores.attribution)  # unchanged
