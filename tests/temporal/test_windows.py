"""Window planning and exact fusion of hand-made window maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videocam.temporal import WindowFuser, interpolation_matrix, plan_windows


def test_plan_covers_every_frame_and_aligns_last_window() -> None:
    windows = plan_windows(20, clip_len=8, stride=5)
    assert windows[:, 0].tolist() == [0, 5, 10, 12]
    assert windows[-1].tolist() == list(range(12, 20))
    assert set(windows.ravel().tolist()) == set(range(20))


def test_plan_exact_fit() -> None:
    assert plan_windows(16, 8, 8)[:, 0].tolist() == [0, 8]
    assert plan_windows(8, 8, 4).tolist() == [list(range(8))]


def test_plan_short_stream_pads_edges() -> None:
    assert plan_windows(3, 8, 4).tolist() == [[0, 0, 0, 1, 2, 2, 2, 2]]
    assert plan_windows(1, 4, 2).tolist() == [[0, 0, 0, 0]]


@pytest.mark.parametrize(("n_out", "n_in"), [(16, 2), (16, 8), (8, 8), (5, 3), (1, 4)])
def test_interpolation_matches_torch(n_out: int, n_in: int) -> None:
    x = np.random.default_rng(0).random((n_in, 6)).astype(np.float32)
    expected = (
        torch.nn.functional.interpolate(
            torch.from_numpy(x.T[None]), size=n_out, mode="linear", align_corners=False
        )[0]
        .numpy()
        .T
    )
    np.testing.assert_allclose(interpolation_matrix(n_out, n_in) @ x, expected, atol=1e-6)


def test_fusion_is_mean_over_covering_windows() -> None:
    # 6 frames, windows of 4 with stride 2: [0..3], [2..5]. Maps at full time resolution.
    fuser = WindowFuser(6)
    m1 = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 2, 2), np.float32)
    m2 = 10 + m1
    out = {}
    fuser.add(np.arange(0, 4), m1, np.array([1.0, 0.0]))
    out.update({p: (m, s) for p, m, s in fuser.pop_final()})
    assert sorted(out) == []  # the next window may still start at 0
    fuser.add(np.arange(2, 6), m2, np.array([0.0, 1.0]))
    out.update({p: (m, s) for p, m, s in fuser.pop_final()})
    assert sorted(out) == [0, 1]
    out.update({p: (m, s) for p, m, s in fuser.finish()})
    values = [out[p][0][0, 0] for p in range(6)]
    # Frames 2 and 3 average window 1 (2, 3) and window 2 (10, 11).
    assert values == [0.0, 1.0, 6.0, 7.0, 12.0, 13.0]
    assert [out[p][1].tolist() for p in range(6)] == [
        [1, 0],
        [1, 0],
        [0.5, 0.5],
        [0.5, 0.5],
        [0, 1],
        [0, 1],
    ]
    assert fuser.n_open == 0


def test_fusion_interpolates_layer_time_axis() -> None:
    # A layer that keeps 2 of 4 frames: slices [a, b] become a, 0.75a+0.25b, 0.25a+0.75b, b.
    fuser = WindowFuser(4)
    window = np.array([[[4.0]], [[8.0]]], dtype=np.float32)
    fuser.add(np.arange(4), window, np.zeros(1))
    values = [float(m[0, 0]) for _, m, _ in fuser.finish()]
    assert values == [4.0, 5.0, 7.0, 8.0]


def test_fusion_streams_with_bounded_memory() -> None:
    n, clip_len, stride = 1000, 16, 8
    fuser = WindowFuser(n)
    seen, most_open = [], 0
    for positions in plan_windows(n, clip_len, stride):
        fuser.add(positions, np.ones((2, 3, 3), np.float32), np.ones(3))
        most_open = max(most_open, fuser.n_open)
        seen += [p for p, _, _ in fuser.pop_final()]
    seen += [p for p, _, _ in fuser.finish()]
    assert seen == list(range(n))
    assert most_open <= clip_len + stride


def test_padded_window_reports_real_frames_only() -> None:
    fuser = WindowFuser(3)
    positions = plan_windows(3, 8, 4)[0]
    fuser.add(positions, np.arange(8, dtype=np.float32)[:, None], np.ones(1))
    out = {p: float(m[0]) for p, m, _ in fuser.finish()}
    # Slots [0,0,0,1,2,2,2,2]: frame 0 = mean(0,1,2), frame 1 = 3, frame 2 = mean(4..7).
    assert out == {0: 1.0, 1: 3.0, 2: 5.5}


def test_fusion_rejects_out_of_order_windows() -> None:
    fuser = WindowFuser(10)
    fuser.add(np.arange(4, 8), np.ones((4, 1)), np.ones(1))
    with pytest.raises(ValueError, match="order"):
        fuser.add(np.arange(0, 4), np.ones((4, 1)), np.ones(1))
