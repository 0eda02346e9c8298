"""Custom builders: path/to/file.py:function and package.module:function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from videocam.errors import ConfigError, LayerNotFoundError, ModelLoadError
from videocam.models import load_model

BUILDER = textwrap.dedent(
    """
    import torch
    from torch import nn

    def build():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv3d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
        )

    def build_2d():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, 2))

    def broken():
        raise RuntimeError("out of cheese")

    def not_a_module():
        return "resnet"
    """
)


@pytest.fixture
def builder_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_builder.py"
    path.write_text(BUILDER, encoding="utf-8")
    return path


def test_file_builder(builder_file: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n", encoding="utf-8")
    loaded = load_model(
        f"{builder_file}:build", layer="0", input_size=(32, 40), labels=labels, weights="none"
    )
    assert loaded.kind == "video"
    assert loaded.clip_len == 16
    assert loaded.weights == "builder"
    assert loaded.layer == "0"
    assert loaded.reshape is None
    assert loaded.preprocess.size == (32, 40)
    assert loaded.preprocess.mean == (0.485, 0.456, 0.406)  # ImageNet by default
    assert loaded.categories == ("cat", "dog", "bird")
    assert not loaded.module.training
    assert loaded.module(torch.zeros(1, 3, 4, 32, 40)).shape == (1, 3)


def test_frame_builder_with_weights_file(builder_file: Path, tmp_path: Path) -> None:
    first = load_model(f"{builder_file}:build_2d", layer="0", input_size=(8, 8), frame_model=True)
    assert first.kind == "frame"
    assert first.clip_len is None
    path = tmp_path / "w.pth"
    state = {k: torch.full_like(v, 0.5) for k, v in first.module.state_dict().items()}
    torch.save({"model": state}, path)
    loaded = load_model(
        f"{builder_file}:build_2d",
        layer="-4",
        input_size=(8, 8),
        frame_model=True,
        weights=path,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
    assert loaded.weights == str(path)
    assert loaded.layer == "0"
    assert torch.equal(loaded.module[0].weight, torch.full((4, 3, 3, 3), 0.5))
    assert loaded.preprocess.mean == (0.5, 0.5, 0.5)


def test_module_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "vc_custom_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "nets.py").write_text(BUILDER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_model("vc_custom_pkg.nets:build", layer="0", input_size=(16, 16))
    assert loaded.name == "vc_custom_pkg.nets:build"
    with pytest.raises(ModelLoadError, match=r"module 'vc_custom_pkg.nope' not found"):
        load_model("vc_custom_pkg.nope:build", layer="0", input_size=(16, 16))


def test_custom_errors(builder_file: Path, tmp_path: Path) -> None:
    spec = f"{builder_file}:build"
    with pytest.raises(ModelLoadError, match=r"no default target layer: pass --layer"):
        load_model(spec, input_size=(16, 16))
    with pytest.raises(LayerNotFoundError, match="'5' not found"):
        load_model(spec, layer="5", input_size=(16, 16))
    with pytest.raises(ConfigError, match="needs an input size: pass --input-size"):
        load_model(spec, layer="0")
    with pytest.raises(ModelLoadError, match=r"has no function 'missing'"):
        load_model(f"{builder_file}:missing", layer="0", input_size=(16, 16))
    with pytest.raises(ModelLoadError, match=r"raised RuntimeError: out of cheese"):
        load_model(f"{builder_file}:broken", layer="0", input_size=(16, 16))
    with pytest.raises(ModelLoadError, match=r"must return a torch.nn.Module, got str"):
        load_model(f"{builder_file}:not_a_module", layer="0", input_size=(16, 16))
    with pytest.raises(ModelLoadError, match=r"custom model file not found: .*absent\.py"):
        load_model(f"{tmp_path / 'absent.py'}:build", layer="0", input_size=(16, 16))
    with pytest.raises(ModelLoadError, match="takes a local state-dict file or 'none'"):
        load_model(spec, layer="0", input_size=(16, 16), weights="KINETICS400_V1")
    with pytest.raises(ModelLoadError, match="must name its builder function"):
        load_model(str(builder_file), layer="0", input_size=(16, 16))
    with pytest.raises(ConfigError, match="num_classes applies to torchvision"):
        load_model(spec, layer="0", input_size=(16, 16), num_classes=3)
    bad = tmp_path / "bad_syntax.py"
    bad.write_text("def build(:\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"cannot import custom model file .*bad_syntax\.py"):
        load_model(f"{bad}:build", layer="0", input_size=(16, 16))
