"""`videocam models NAME`: kind, default layer, input size, weights and the classes of every
kind of name --model accepts, offline; a bad name is one line and exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torchvision.models as tvm

from videocam.cli import main
from videocam.errors import ModelLoadError
from videocam.models import describe_model
from videocam.models.tiny import TINY_CLASSES


def _card(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict[str, str], list[str]]:
    """(the `key: value` header lines, the `INDEX NAME` class lines) printed for argv."""
    assert main(["models", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    classes_at = next(i for i, line in enumerate(lines) if line.startswith("classes: "))
    header = dict(line.split(": ", 1) for line in lines[: classes_at + 1])
    return header, lines[classes_at + 1 :]


def _indexed(lines: list[str]) -> list[str]:
    """The names of `INDEX NAME` lines, checking the indices run 0, 1, 2..."""
    names = []
    for expected, line in enumerate(lines):
        index, name = line.split(" ", 1)
        assert int(index) == expected
        names.append(name)
    return names


def test_a_torchvision_video_model_offline(
    offline_hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, classes = _card(capsys, "r3d_18")  # no download: the hub cache is empty, offline
    assert header["model"] == "r3d_18"
    assert header["kind"] == "video (windows of frames)"
    assert header["default layer"] == "layer4"
    assert header["input size"] == "112x112"
    assert header["clip length"] == "16"
    assert header["weights"].startswith("KINETICS400_V1")
    assert header["classes"] == "400"
    categories = tvm.video.R3D_18_Weights.KINETICS400_V1.meta["categories"]
    assert _indexed(classes) == list(categories)
    assert not list(offline_hub.parent.parent.glob("**/*.pth"))


def test_a_torchvision_image_model_and_another_weights_name(
    offline_hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, classes = _card(capsys, "ResNet50", "--weights", "imagenet1k_v1")
    assert (header["model"], header["kind"]) == ("resnet50", "frame (run per frame)")
    assert header["weights"].startswith("IMAGENET1K_V1 (--weights takes IMAGENET1K_V1, ")
    assert _indexed(classes) == list(tvm.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def test_a_detector(offline_hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header, classes = _card(capsys, "fasterrcnn_mobilenet_v3_large_fpn")
    assert header["kind"] == "frame (run per frame), object detector"
    assert header["default layer"] == "backbone.body.16"
    assert header["input size"].startswith("follows each video")
    assert header["background class"] == "0 __background__"
    meta = tvm.detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1.meta
    assert _indexed(classes) == list(meta["categories"])


def test_the_bundled_models(capsys: pytest.CaptureFixture[str]) -> None:
    header, classes = _card(capsys, "videocam_tiny")
    assert header["kind"] == "video (windows of frames)"
    assert (header["default layer"], header["input size"]) == ("block4", "64x64")
    assert header["background class"] == "0 background"
    assert header["note"].startswith("trained on synthetic clips only")
    assert _indexed(classes) == list(TINY_CLASSES)
    header, classes = _card(capsys, "efficientnet_lite0")
    assert (header["default layer"], header["input size"]) == ("_conv_head", "224x224")
    assert "note" not in header
    assert _indexed(classes) == list(tvm.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def test_an_hf_folder_and_a_timm_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("timm")
    from support.hf_models import CLASSES, save_hf, save_timm

    folder = save_hf("videomae", tmp_path / "videomae", processor={})
    header, classes = _card(capsys, f"hf:{folder}")
    assert header["source"] == "transformers"
    assert header["kind"] == "video (windows of frames)"
    assert (header["input size"], header["clip length"]) == ("32x32", "4")
    assert _indexed(classes) == list(CLASSES)
    weights = save_timm("test_resnet", tmp_path / "r.pt", num_classes=3)
    header, classes = _card(capsys, "timm:test_resnet", "--weights", str(weights))
    assert (header["source"], header["kind"]) == ("timm", "frame (run per frame)")
    assert header["classes"].startswith("3, unnamed")
    assert classes == []


def test_a_custom_builder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    builder = tmp_path / "net.py"
    builder.write_text(
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),"
        " torch.nn.Flatten(), torch.nn.Linear(4, 2))\n",
        encoding="utf-8",
    )
    header, classes = _card(capsys, f"{builder}:build")
    assert header["source"] == "custom"
    assert header["default layer"] == "none: pass --layer DOTTED.NAME"
    assert header["input size"] == "none: pass --input-size H W"
    assert classes == []


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "videocam_tiny", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["categories"] == list(TINY_CLASSES)
    assert (card["kind"], card["default_layer"], card["input_size"]) == (
        "video",
        "block4",
        [64, 64],
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["resnet5000"], "unknown model 'resnet5000'; did you mean"),
        (["r3d_18", "--weights", "nope"], "unknown weights 'nope' for r3d_18"),
        (["missing_file.py:build"], "custom model file not found"),
    ],
)
def test_a_bad_name_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert main(["models", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert needle in captured.err


def test_describe_model_reads_enums_without_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision names are described from the weights enum alone: no model is built."""

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("built a model")

    monkeypatch.setattr(tvm, "get_model", no_build)
    card = describe_model("swin3d_b", weights="KINETICS400_IMAGENET22K_V1")
    assert (card.kind, card.default_layer, card.clip_len) == ("video", "features.6", 16)
    assert card.categories is not None
    assert len(card.categories) == 400
    with pytest.raises(ModelLoadError, match=re.escape("unknown model 'nope'")):
        describe_model("nope")
