"""Local state-dict files: safe reading, wrappers and prefixes, strict loading into models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from videocam.errors import ModelLoadError
from videocam.models import load_model, load_state_dict_file
from videocam.models.weights import apply_state_dict, head_num_classes, parse_weights


class Arbitrary:
    """Not a tensor: torch.load(weights_only=True) must refuse to unpickle it."""

    def __init__(self) -> None:
        self.payload = 42


def _tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    return net.state_dict()


def test_bare_wrapped_and_prefixed_files_load_identical_tensors(tmp_path: Path) -> None:
    state = _tiny_state()
    files = {
        "bare.pth": state,
        "wrapped.pth": {"state_dict": state, "epoch": 3},
        "model.pt": {"model": state, "optimizer": {"lr": 0.1}},
        "parallel.pth": {f"module.{k}": v for k, v in state.items()},
        "both.ckpt": {"state_dict": {f"module.{k}": v for k, v in state.items()}},
    }
    for name, obj in files.items():
        torch.save(obj, tmp_path / name)
        loaded = load_state_dict_file(tmp_path / name)
        assert list(loaded) == list(state), name
        assert all(torch.equal(loaded[k], state[k]) for k in state), name


def test_arbitrary_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "extra": Arbitrary()}, path)
    with pytest.raises(ModelLoadError, match=r"refused to load weights file .*evil\.pth"):
        load_state_dict_file(path)


def test_missing_and_corrupt_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(ModelLoadError, match=f"weights file not found: {missing}"):
        load_state_dict_file(missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"cannot read weights file .*garbage\.pth"):
        load_state_dict_file(garbage)
    with pytest.raises(ModelLoadError, match="not a file"):
        load_state_dict_file(tmp_path)
    not_state = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_state)
    with pytest.raises(ModelLoadError, match="does not hold a state dict"):
        load_state_dict_file(not_state)


def test_strict_loading_reports_keys_briefly() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    state = dict(net.state_dict())
    state["2.weight"] = torch.zeros(5, 3)
    state["extra.bias"] = torch.zeros(1)
    del state["0.bias"]
    with pytest.raises(ModelLoadError) as info:
        apply_state_dict(net, state, source="file x.pth", model_name="toy")
    message = str(info.value)
    assert message.startswith("weights file x.pth do not fit toy:")
    assert "1 missing keys (0.bias)" in message
    assert "1 unexpected keys (extra.bias)" in message
    assert "2.weight (5, 3) vs (2, 3)" in message


def test_head_num_classes() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 400))
    other = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 7))
    assert head_num_classes(net, other.state_dict()) == 7
    assert head_num_classes(net, net.state_dict()) is None
    wider = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 400))
    assert head_num_classes(net, wider.state_dict()) is None


def test_parse_weights() -> None:
    assert (parse_weights(None).kind, parse_weights("None").kind) == ("none", "none")
    assert parse_weights("default").kind == "default"
    assert parse_weights("KINETICS400_V1").kind == "name"
    assert parse_weights("R3D_18_Weights.KINETICS400_V1").kind == "name"
    assert parse_weights("model.pth").kind == "file"
    assert parse_weights("runs/best").kind == "file"
    assert parse_weights(Path("ckpt")).kind == "file"


def test_torchvision_model_from_a_local_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = load_model("r3d_18", weights="none")
    path = tmp_path / "r3d.pth"
    torch.save({"state_dict": reference.module.state_dict()}, path)
    loaded = load_model("r3d_18", weights=str(path))
    assert loaded.weights == str(path)
    assert loaded.categories is not None
    assert len(loaded.categories) == 400
    for key, value in reference.module.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[key], value)


def test_a_file_with_another_head_rebuilds_the_model(tmp_path: Path) -> None:
    torch.manual_seed(2)
    five = load_model("r3d_18", weights="none", num_classes=5)
    path = tmp_path / "five.pth"
    torch.save(five.module.state_dict(), path)
    loaded = load_model("r3d_18", weights=path, labels=["a", "b", "c", "d", "e"])
    assert loaded.module.fc.out_features == 5
    assert loaded.categories == ("a", "b", "c", "d", "e")
    assert torch.equal(loaded.module.fc.weight, five.module.fc.weight)


def test_a_file_for_another_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(load_model("videocam_tiny", weights="none").module.state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"do not fit r3d_18: .*missing keys"):
        load_model("r3d_18", weights=path)


def test_googlenet_file_without_aux_heads_and_with(tmp_path: Path) -> None:
    import torchvision.models as tvm

    plain = load_model("googlenet", weights="none")  # built like the pretrained: no aux heads
    path = tmp_path / "g.pth"
    torch.save(plain.module.state_dict(), path)
    assert not load_model("googlenet", weights=path).module.aux_logits
    # torchvision's downloadable file carries the aux heads.
    with_aux = tvm.googlenet(weights=None, aux_logits=True, init_weights=False)
    torch.save(with_aux.state_dict(), path)
    loaded = load_model("googlenet", weights=path)
    assert loaded.module.transform_input  # as torchvision's pretrained builder sets it
    assert loaded.module(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
