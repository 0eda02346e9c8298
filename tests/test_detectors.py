"""Object detectors over a whole video, end to end: detectors with forced detections at known
boxes (tests/support/detectors.py), so target scores, keyframe boxes and maps are exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import videocam
from videocam.analysis import FRAME_COLUMNS, KEYFRAME_COLUMNS
from videocam.analysis.detections import DETECTION_COLUMNS
from videocam.cli import main
from videocam.models import load_model
from videocam.synthetic import write_frames

from support.detectors import TINY_LABELS, force_detection, tiny_frames

SUPPORT = Path(__file__).parent / "support" / "detectors.py"
TINY = f"{SUPPORT}:build_tiny"
FORCED = f"{SUPPORT}:build_forced_fasterrcnn"
#: The tiny video: a white car (score 1.0) in frames 4-11, a grey person (score 0.6) in 8-17:
#: the person is in more frames, the car has more detection mass (8.0 against 6.0).
CAR_FRAMES, PERSON_FRAMES = range(4, 12), range(8, 18)
CAR_BOX, PERSON_BOX = (8, 16, 32, 48), (48, 16, 72, 40)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("detectors")
    frames = tiny_frames(20, car=CAR_FRAMES, person=PERSON_FRAMES)
    write_frames(folder / "street.mp4", frames, fps=10, lossless=True)
    (folder / "labels.txt").write_text("\n".join(TINY_LABELS) + "\n", encoding="utf-8")
    return folder / "street.mp4"


def _analyze(video: Path, out: Path, *flags: str) -> int:
    labels = video.parent / "labels.txt"
    return main(["analyze", str(video), "-o", str(out), "--labels", str(labels), *flags])


def test_custom_detector_auto_explains_the_class_with_most_detection_mass(
    tiny_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = _analyze(tiny_video, out, "--detector", TINY, "--topk", "3", "--min-gap", "0.3")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target"]["name"] == "car"
    assert summary["target"]["auto"]
    assert summary["method"] == "eigencam"  # the detectors' default
    top = {c["name"]: c["mean_prob"] for c in summary["target"]["video_top_classes"]}
    assert top["car"] == pytest.approx(8 / 20)
    assert top["person"] == pytest.approx(0.6 * 10 / 20)
    assert summary["detector"]["score_threshold"] == 0.5
    assert summary["detector"]["input_size"] == [64, 80]  # a custom detector: the video's size
    assert summary["model"]["layer"] == "backbone"
    assert summary["model"]["layer_map_shape"] == [
        1,
        16,
        20,
    ]
    frames = pd.read_csv(out / "frames.csv")
    assert list(frames.columns) == FRAME_COLUMNS
    expected = np.array([1.0 if i in CAR_FRAMES else 0.0 for i in range(20)])
    np.testing.assert_allclose(frames.target_score, expected, atol=1e-6)
    keyframes = pd.read_csv(out / "keyframes.csv")
    assert list(keyframes.columns) == KEYFRAME_COLUMNS
    assert len(keyframes) == 3
    assert set(keyframes.frame_index) <= set(CAR_FRAMES)
    for row in keyframes.itertuples():
        assert (row.x0, row.y0, row.x1, row.y1) == CAR_BOX
        assert (out / row.image).is_file()
    detections = pd.read_csv(out / "detections.csv")
    assert list(detections.columns) == DETECTION_COLUMNS
    assert detections["rank"].tolist() == [1, 2, 3]
    assert detections.keyframe_box.all()
    assert set(detections.class_name) == {"car"}
    np.testing.assert_allclose(detections.score, 1.0, atol=1e-6)
    # EigenCAM on the backbone: where only the car is, the map is the car (4x4 feature cells).
    cams = np.load(out / "cams.npy").astype(np.float64)
    car_only = cams[5]
    inside = car_only[4:12, 2:8].sum()
    assert inside / car_only.sum() > 0.99
    assert np.all(cams[:4] == 0)  # an empty dark street: no map at all
    # The usual outputs work as for classifiers: the review page and the exports.
    assert (out / "report.html").is_file()
    assert (out / "timeline.png").is_file()
    assert main(["export", "vtt", str(out)]) == 0
    assert "Keyframe 1: car" in (out / "keyframes.vtt").read_text()


def test_named_target_and_score_threshold(tiny_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "person"
    flags = ["--detector", TINY, "--target", "person", "--topk", "2", "--min-gap", "0.3"]
    flags.append("--no-render")
    assert _analyze(tiny_video, out, *flags) == 0
    frames = pd.read_csv(out / "frames.csv")
    expected = np.array([0.6 if i in PERSON_FRAMES else 0.0 for i in range(20)])
    np.testing.assert_allclose(frames.target_score, expected, atol=1e-6)
    keyframes = pd.read_csv(out / "keyframes.csv")
    assert len(keyframes) == 2
    assert set(keyframes.frame_index) <= set(PERSON_FRAMES)
    assert {(r.x0, r.y0, r.x1, r.y1) for r in keyframes.itertuples()} == {PERSON_BOX}
    # Above the person's 0.6: it counts for nothing, and the summary says why.
    out = tmp_path / "strict"
    assert _analyze(tiny_video, out, *flags, "--score-threshold", "0.7") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert pd.read_csv(out / "frames.csv").target_score.max() == 0
    assert summary["keyframes"]["found"] == 0
    assert any(
        "no detection of person reaches --score-threshold 0.7" in w for w in summary["warnings"]
    )


def _explain_car(video: Path, method: str, **options: object) -> videocam.Analysis:
    """The tiny detector's analysis of ``video`` explaining the car, through the Python API."""
    labels = str(video.parent / "labels.txt")
    return videocam.analyze(
        video,
        TINY,
        detector=True,
        labels=labels,
        target="car",
        method=method,
        render=False,
        **options,
    )


def test_gradient_methods_follow_the_explained_detection(tiny_video: Path) -> None:
    analysis = _explain_car(tiny_video, "hirescam")
    cams = analysis.cams.astype(np.float64)
    # Frame 9 shows both objects; the car's score depends on its box's cells only.
    both = cams[9]
    car_cells = np.zeros(both.shape, dtype=bool)
    car_cells[4:12, 2:8] = True
    assert np.all(both[~car_cells] == 0)
    assert np.all(both[car_cells] > 0)
    assert np.all(cams[[0, 1, 2, 3, 12, 15]] == 0)  # no car: no gradient, no map


@pytest.mark.slow
def test_torchvision_faster_rcnn_with_a_forced_detection(tiny_video: Path) -> None:
    """A real torchvision detector (its own transform, RPN and post-processing) fitted to the
    video (64x80 -> 320x400, as its own resize would), the forced box back in video pixels."""
    loaded = load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="none")
    force_detection(loaded.module)  # a car (COCO 3) at 25-75 % of the frame
    analysis = videocam.analyze(
        tiny_video, loaded, target="car", method="hirescam", topk=2, min_gap=0.5, render=False
    )
    assert analysis.target == (3, "car")
    assert analysis.summary["detector"]["input_size"] == [320, 400]
    assert analysis.summary["model"]["layer"] == "backbone.body.16"
    keyframes = analysis.keyframes
    assert len(keyframes) == 2
    assert {(r.x0, r.y0, r.x1, r.y1) for r in keyframes.itertuples()} == {(20, 16, 60, 48)}
    assert analysis.detections is not None
    assert analysis.detections[["x0", "y0", "x1", "y1"]].drop_duplicates().values.tolist() == [
        [20.0, 16.0, 60.0, 48.0]
    ]
    assert (analysis.frames.target_score > 0.73).all()  # sigmoid(1 + ...) in every frame
    # The score reads the box's cells of the FPN (stride 32 here, 10x13): the map's peak and
    # most of its mass lie in them, widened by one cell for the FPN's 3x3 convolution.
    cams = analysis.cams.astype(np.float64)
    assert cams.shape[1:] == (10, 13)
    box_cells = np.zeros((10, 13), dtype=bool)
    box_cells[1:9, 2:11] = True  # rows 2.5-7.5, columns 3.25-9.75, plus one cell around
    for frame in cams:
        peak = np.unravel_index(np.argmax(frame), frame.shape)
        assert box_cells[peak]
        assert frame[box_cells].sum() / frame.sum() > 0.95


@pytest.mark.slow
def test_torchvision_detector_with_detector_flag_as_custom_builder(
    tiny_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "forced"
    code = main(
        ["analyze", str(tiny_video), "-o", str(out), "--model", FORCED, "--detector", "--topk", "1"]
    )
    assert code == 0
    keyframes = pd.read_csv(out / "keyframes.csv")
    assert (keyframes.x0[0], keyframes.y0[0], keyframes.x1[0], keyframes.y1[0]) == (20, 16, 60, 48)
    assert len(list((out / "keyframes").glob("*.jpg"))) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--detector", "tiny.py"], "--detector 'tiny.py': expected a builder path/to/file.py"),
        (["--detector", f"{SUPPORT}:nothing"], "has no function 'nothing'"),
        (["--model", "resnet18", "--weights", "none", "--detector"], "resnet18 is a classifier"),
        (
            ["--detector", TINY, "--score-threshold", "1.5"],
            "score_threshold=1.5: must be in [0, 1]",
        ),
    ],
)
def test_bad_detector_arguments_are_one_line_and_exit_2(
    tiny_video: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    assert _analyze(tiny_video, tmp_path / "o", *flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


@pytest.mark.slow
def test_auto_target_with_gradients_keeps_few_candidates_and_equals_the_named_target(
    tiny_video: Path,
) -> None:
    """91 COCO classes, a gradient method, target auto: each window keeps the maps of 4
    candidate classes (not 32: each costs a backward through the RoI heads), and the result is
    the explicit target's, exactly."""
    from videocam.runtime.resources import DETECTOR_AUTO_CANDIDATES

    loaded = load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="none")
    force_detection(loaded.module)
    options = {"method": "gradcam", "topk": 2, "min_gap": 0.5, "render": False}
    auto = videocam.analyze(tiny_video, loaded, target="auto", **options)
    named = videocam.analyze(tiny_video, loaded, target="car", **options)
    assert auto.target == named.target == (3, "car")
    single_pass = auto.summary["target"]["single_pass"]
    assert single_pass["candidates_per_window"] == DETECTOR_AUTO_CANDIDATES == 4
    assert single_pass["windows_recomputed"] == 0
    np.testing.assert_array_equal(auto.cams, named.cams)
    pd.testing.assert_frame_equal(auto.keyframes, named.keyframes)


@pytest.mark.parametrize("method", ["eigengradcam", "scorecam", "ablationcam"])
def test_the_other_methods_explain_a_detector(tiny_video: Path, method: str) -> None:
    analysis = _explain_car(tiny_video, method, topk=2, min_gap=0.3)
    assert analysis.summary["method"] == method
    cams = analysis.cams.astype(np.float64)
    assert np.isfinite(cams).all()
    assert (cams >= 0).all()
    assert cams.max() == 1
    keyframes = analysis.keyframes
    assert len(keyframes) == 2
    assert set(keyframes.frame_index) <= set(CAR_FRAMES)
    assert {(r.x0, r.y0, r.x1, r.y1) for r in keyframes.itertuples()} == {CAR_BOX}
    if method == "eigengradcam":  # no car, no gradient: no map
        assert np.all(cams[[0, 1, 2, 3, 12, 15]] == 0)
