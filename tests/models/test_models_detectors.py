"""Object detectors as class scorers: torchvision's detectors by name (random weights, small
inputs), their default layers, weights, sizes, and the detection mass of a known detector."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from videocam.cam import cam_and_output_classes
from videocam.cli import main
from videocam.errors import CamError, ModelLoadError
from videocam.models import list_models, load_model, resolve_layer
from videocam.models.detectors import (
    DetectionScores,
    _runs_at,
    detector_model_names,
    fitted_input_size,
)
from videocam.models.spec import DetectorInfo

from support.detectors import TINY_OBJECTS, TinyDetector, box_pixels

#: The detectors of the issue, with their default layer and its stride.
NAMED = {
    "fasterrcnn_resnet50_fpn_v2": ("backbone.body.layer4", 32),
    "fasterrcnn_mobilenet_v3_large_fpn": ("backbone.body.16", 32),
    "retinanet_resnet50_fpn_v2": ("backbone.body.layer4", 32),
    "fcos_resnet50_fpn": ("backbone.body.layer4", 32),
    "ssdlite320_mobilenet_v3_large": ("backbone.features.0", 16),
}


def test_models_lists_every_torchvision_detector_with_a_pinned_layer() -> None:
    rows = {info.name: info for info in list_models() if info.task == "detection"}
    assert set(rows) == set(detector_model_names())
    assert set(NAMED) <= set(rows)
    for info in rows.values():
        assert info.kind == "frame"
        assert info.source == "torchvision"
        assert "COCO_V1" in info.weights
        assert not info.default_layer.startswith("(")  # pinned, never derived
    for name, (layer, _) in NAMED.items():
        assert rows[name].default_layer == layer
    assert all(info.task == "classification" for info in list_models() if info.name == "resnet50")


def _small(loaded_module: torch.nn.Module) -> None:
    """Few proposals and no internal score floor: random weights then give detections."""
    net: object = loaded_module
    rpn = getattr(net, "rpn", None)
    if rpn is not None:
        rpn._pre_nms_top_n = {"training": 20, "testing": 20}
        rpn._post_nms_top_n = {"training": 20, "testing": 20}
        net.roi_heads.score_thresh = 0.0  # type: ignore[attr-defined]
    else:  # a plain attribute of the detector itself (the view shares modules only)
        net.detector.score_thresh = 0.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_detector_builds_offline_and_every_score_reaches_its_default_layer(
    name: str,
) -> None:
    torch.manual_seed(0)
    loaded = load_model(name, weights="none", input_size=(64, 96))
    layer, stride = NAMED[name]
    assert loaded.layer == layer
    assert loaded.kind == "frame"
    assert loaded.weights == "none"
    assert loaded.categories is not None
    assert len(loaded.categories) == 91
    assert loaded.categories[3] == "car"
    assert loaded.background_class == 0
    assert loaded.preprocess.mean == (0.0, 0.0, 0.0)
    assert loaded.preprocess.std == (1.0, 1.0, 1.0)
    assert loaded.detector is not None
    assert not loaded.detector.fit_to_video
    assert isinstance(loaded.module, DetectionScores)
    _small(loaded.module)
    loaded.module.score_threshold = 0.0
    images = torch.rand(1, 3, 64, 96)
    expected_map = (math.ceil(64 / stride), math.ceil(96 / stride))
    eigen = cam_and_output_classes(loaded.module, images, loaded.layer, [3], "eigencam")
    assert tuple(eigen.output.shape) == (1, 91)
    assert tuple(eigen.cams.shape[-2:]) == expected_map
    # The most-detected class: its mass is differentiable back to the default layer.
    top = int(eigen.output[0].argmax())
    assert float(eigen.output[0, top]) > 0
    grad = cam_and_output_classes(loaded.module, images, loaded.layer, [top], "gradcam++")
    torch.testing.assert_close(grad.output, eigen.output)
    assert tuple(grad.cams.shape[-2:]) == expected_map
    assert all(p.grad is None and not p.requires_grad for p in loaded.module.parameters())
    leaves: list[torch.Tensor] = []

    def as_leaf(_module: object, _args: object, output: torch.Tensor) -> torch.Tensor:
        leaves.append(output.detach().requires_grad_(True))
        return leaves[-1]

    handle = resolve_layer(loaded.module, layer).register_forward_hook(as_leaf)
    try:
        with torch.enable_grad():
            mass = loaded.module(images)
            (gradient,) = torch.autograd.grad(mass[0, top], leaves)
    finally:
        handle.remove()
    assert float(gradient.abs().sum()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(detector_model_names()) - set(NAMED)))
def test_every_other_listed_detector_builds_and_is_explained(name: str) -> None:
    """Beyond the five of the issue, every detector `videocam models` lists builds offline and
    gives a map at its default layer and a score per class (keypoint R-CNN: person only)."""
    torch.manual_seed(0)
    size = (300, 300) if name == "ssd300_vgg16" else (64, 96)  # SSD300: its own size
    loaded = load_model(name, weights="none", input_size=size)
    assert loaded.categories is not None
    assert loaded.background_class == 0
    assert isinstance(loaded.module, DetectionScores)
    _small(loaded.module)
    loaded.module.score_threshold = 0.0
    result = cam_and_output_classes(loaded.module, torch.rand(1, 3, *size), loaded.layer, [1])
    assert tuple(result.output.shape) == (1, len(loaded.categories))
    assert result.cams.shape[:2] == (1, 1)
    assert bool(torch.isfinite(result.cams).all())
    assert all(p.grad is None and not p.requires_grad for p in loaded.module.parameters())


def test_an_input_size_too_small_for_the_detector_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # the model fails first
    argv = ["analyze", str(video), "-o", str(tmp_path / "o"), "--model", "ssd300_vgg16"]
    code = main([*argv, "--weights", "none", "--input-size", "64", "96", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        "videocam: error: ssd300_vgg16: --input-size 64 96 is too small for this detector ("
    )
    assert err.endswith("leave --input-size out to run at the detector's own size\n")
    assert err.count("\n") == 1


def test_default_weights_offline_is_one_line_and_exit_2(
    offline_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # the model fails first
    code = main(
        [
            "analyze",
            str(video),
            "-o",
            str(tmp_path / "o"),
            "--model",
            "ssdlite320_mobilenet_v3_large",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "could not download COCO_V1 weights for ssdlite320_mobilenet_v3_large" in err
    assert "--weights /path/to/ssdlite320_mobilenet_v3_large_coco-a79551df.pth" in err
    assert not (tmp_path / "o").exists()


def test_local_state_dict_file_loads_with_weights_only(tmp_path: Path) -> None:
    import torchvision.models as tvm

    torch.manual_seed(1)
    reference = tvm.get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None)
    path = tmp_path / "ssdlite.pth"
    torch.save({"model": reference.state_dict()}, path)  # a training loop's wrapper
    loaded = load_model("ssdlite320_mobilenet_v3_large", weights=str(path))
    assert loaded.weights == str(path)
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[key], value), key
    # Not a state dict: one line naming the file.
    bad = tmp_path / "bad.pth"
    torch.save({"model": "weights"}, bad)
    with pytest.raises(ModelLoadError, match=f"weights file {bad} does not hold a state dict"):
        load_model("ssdlite320_mobilenet_v3_large", weights=str(bad))


def test_fitted_input_size_follows_the_detectors_own_resize() -> None:
    rcnn = DetectorInfo(score_threshold=0.5, min_size=800, max_size=1333)
    assert fitted_input_size(rcnn, 720, 1280) == (750, 1333)  # the long side bounds it
    assert fitted_input_size(rcnn, 480, 640) == (800, 1067)
    assert fitted_input_size(rcnn, 1080, 1080) == (800, 800)
    ssd = DetectorInfo(score_threshold=0.5, fixed_size=(320, 320))
    assert fitted_input_size(ssd, 720, 1280) == (320, 320)
    assert fitted_input_size(DetectorInfo(score_threshold=0.5), 90, 160) == (90, 160)
    loaded = load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="none")
    assert loaded.detector is not None
    assert loaded.detector.fit_to_video
    assert (loaded.detector.min_size, loaded.detector.max_size) == (320, 640)


def test_the_detector_runs_at_its_input_size_and_its_resize_is_restored() -> None:
    loaded = load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="none")
    transform = loaded.module.detector.transform
    seen: list[tuple[int, ...]] = []
    handle = loaded.module.backbone.register_forward_pre_hook(
        lambda _m, args: seen.append(tuple(args[0].shape))
    )
    try:
        loaded.module(torch.rand(1, 3, 100, 150))
    finally:
        handle.remove()
    assert seen == [(1, 3, 128, 160)]  # not resized to 320: only padded to multiples of 32
    assert (transform.min_size, transform.max_size) == ((320,), 640)
    with _runs_at(loaded.module.detector, (64, 80)), pytest.raises(RuntimeError):  # noqa: PT012 - the size is restored on the way out
        assert transform.min_size == (64,)
        assert transform.max_size == 80
        raise RuntimeError
    assert (transform.min_size, transform.max_size) == ((320,), 640)


def test_detection_mass_is_the_sum_of_scores_at_or_above_the_threshold() -> None:
    detector = TinyDetector().eval()
    scorer = DetectionScores(detector, num_classes=4, score_threshold=0.5)
    images = torch.zeros(2, 3, 64, 80)
    for n, (car, person) in enumerate(((1.0, 0.6), (0.4, 0.5))):
        for (_, fractions), level in zip(TINY_OBJECTS, (car, person), strict=True):
            x0, y0, x1, y1 = box_pixels(fractions, 64, 80)
            images[n, :, y0:y1, x0:x1] = level
    mass = scorer(images)
    torch.testing.assert_close(mass, torch.tensor([[0.0, 1.0, 0.6, 0.0], [0.0, 0.0, 0.5, 0.0]]))
    kept = scorer.detect(images)
    assert kept[1].labels.tolist() == [2]
    assert kept[1].boxes.tolist() == [[48, 16, 72, 40]]
    # A view on the detector: same names, shared modules; eval passes through.
    assert list(scorer.state_dict()) == list(detector.state_dict())
    assert scorer.backbone is detector.backbone
    scorer.train()
    assert detector.training
    with pytest.raises(CamError, match="eval mode only"):
        scorer(images)
    scorer.eval()
    assert not detector.training
    # Labels beyond the class count and outputs that are not detections: one clear error.
    with pytest.raises(CamError, match="label 2 out of range for 2 classes"):
        DetectionScores(detector, num_classes=2, score_threshold=0.5)(images)
    not_a_detector = DetectionScores(torch.nn.Identity().eval(), num_classes=4)
    with pytest.raises(CamError, match="expected a list of 2 dicts with 'boxes'"):
        not_a_detector(images)
