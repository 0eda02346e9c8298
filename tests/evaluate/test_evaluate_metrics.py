"""Deletion/insertion, hit rate and IoU on small cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from videocam.evaluate import (
    deletion_curve,
    insertion_curve,
    keyframe_hit_rate,
    normalised_auc,
    order_by_attribution,
    segment_iou,
)

EVENT = np.zeros(20, dtype=bool)
EVENT[5:10] = True  # frames 5..9 carry the class


def event_score(kept: np.ndarray) -> float:
    """The class is visible in proportion to the event frames still present."""
    return 0.1 + 0.9 * float(np.mean(kept[EVENT]))


def test_order_by_attribution_ties_earlier_first() -> None:
    assert order_by_attribution(np.array([0.2, 0.5, 0.5, 0.1])).tolist() == [1, 2, 0, 3]


def test_normalised_auc_exact() -> None:
    assert normalised_auc(np.array([1.0, 0.5, 0.0]), 1.0) == pytest.approx(0.5)
    assert normalised_auc(np.array([0.8, 0.8]), 0.8) == pytest.approx(1.0)
    assert np.isnan(normalised_auc(np.array([0.0, 0.0]), 0.0))


def test_event_first_deletion_beats_random() -> None:
    event_first = np.r_[np.arange(5, 10), np.arange(0, 5), np.arange(10, 20)]
    curve = deletion_curve(event_first, event_score, steps=4)
    # 0, 5, 10, 15, 20 frames removed: the event is gone after the first step.
    np.testing.assert_allclose(curve, [1.0, 0.1, 0.1, 0.1, 0.1])
    auc = normalised_auc(curve, 1.0)
    assert auc == pytest.approx((0.55 + 0.1 * 3) / 4)
    rng = np.random.default_rng(0)
    random_aucs = [
        normalised_auc(deletion_curve(rng.permutation(20), event_score, 4), 1.0) for _ in range(20)
    ]
    assert auc < min(random_aucs)


def test_event_first_insertion_beats_reverse() -> None:
    event_first = np.r_[np.arange(5, 10), np.arange(0, 5), np.arange(10, 20)]
    curve = insertion_curve(event_first, event_score, steps=4)
    np.testing.assert_allclose(curve, [0.1, 1.0, 1.0, 1.0, 1.0])
    reverse = insertion_curve(event_first[::-1], event_score, steps=4)
    assert normalised_auc(curve, 1.0) > normalised_auc(reverse, 1.0)


def test_keyframe_hit_rate_exact() -> None:
    assert keyframe_hit_rate(np.array([1.0, 2.0, 2.5, 4.0]), 2.0, 3.0) == 0.5
    assert keyframe_hit_rate(np.array([3.0]), 2.0, 3.0) == 0.0  # end exclusive
    assert np.isnan(keyframe_hit_rate(np.array([]), 0.0, 1.0))


def test_segment_iou_exact() -> None:
    times = np.arange(10) * 0.5  # 0.0 .. 4.5
    # True interval [1.0, 3.0): frames 2, 3, 4, 5. Predicted [2.0, 4.0]: frames 4..8.
    assert segment_iou(times, [(2.0, 4.0)], 1.0, 3.0) == pytest.approx(2 / 7)
    assert segment_iou(times, [(1.0, 2.5)], 1.0, 3.0) == pytest.approx(1.0)
    assert segment_iou(times, [], 1.0, 3.0) == 0.0
    assert segment_iou(times, [(0.0, 0.5), (2.0, 2.5)], 1.0, 3.0) == pytest.approx(2 / 6)
