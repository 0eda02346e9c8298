"""hf:ID_OR_DIR: tiny random transformers classifiers saved with save_pretrained and loaded back —
the adapter, each family's default layer and reshape, what comes from the model's own files,
the weights options and every error a user can meet (offline Hub, missing extra, custom code)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from videocam.errors import ConfigError, ModelLoadError
from videocam.models import LoadedModel, load_model, resolve_layer
from videocam.models.hf import HF_FAMILIES, HFClassifier
from videocam.models.layers import layer_name

transformers = pytest.importorskip("transformers")

from support.hf_models import (  # noqa: E402
    BUILDERS,
    CLASSES,
    CLIP,
    IMAGE,
    VIDEO_FAMILIES,
    save_hf,
)
from support.layers import layer_activations  # noqa: E402

# family -> (default layer, activations at it for a batch of 2, maps (N, C, *S))
EXPECTED = {
    "videomae": ("videomae.encoder.layer.1", (2, 32, 2, 4, 4)),
    "timesformer": ("timesformer.encoder.layer.1.layernorm_before", (2, 32, 4, 4, 4)),
    "vivit": ("vivit.layers.1.layernorm_before", (2, 32, 2, 4, 4)),
    "vit": ("vit.layers.1.layernorm_before", (2, 32, 4, 4)),
    "deit": ("deit.layers.1.layernorm_before", (2, 32, 4, 4)),
    "dinov2": ("dinov2.encoder.layer.1.norm1", (2, 32, 4, 4)),
    "dinov2_with_registers": ("dinov2_with_registers.encoder.layer.1.norm1", (2, 32, 4, 4)),
    "beit": ("beit.layers.1", (2, 32, 4, 4)),
    "convnext": ("convnext.encoder.stages.3", (2, 32, 2, 2)),
    "resnet": ("resnet.encoder.stages.3", (2, 32, 2, 2)),
}

CNN_PROCESSOR = {"size": {"height": 64, "width": 64}, "do_center_crop": False}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every family, saved once with its own processor class's defaults (CNNs at 64x64)."""
    root = tmp_path_factory.mktemp("hf")
    return {
        family: save_hf(
            family,
            root / family,
            processor=CNN_PROCESSOR if family in ("convnext", "resnet") else {},
        )
        for family in BUILDERS
    }


def _input(loaded: LoadedModel, batch: int = 2) -> torch.Tensor:
    h, w = loaded.preprocess.size
    if loaded.kind == "video":
        assert loaded.clip_len is not None
        return torch.randn(batch, 3, loaded.clip_len, h, w)
    return torch.randn(batch, 3, h, w)


def test_every_family_is_listed_and_tested() -> None:
    assert set(HF_FAMILIES) == set(EXPECTED) == set(BUILDERS)


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_family_loads_with_its_default_layer(family: str, saved: dict[str, Path]) -> None:
    loaded = load_model(f"hf:{saved[family]}")
    layer, shape = EXPECTED[family]
    assert loaded.layer == layer
    assert loaded.kind == ("video" if family in VIDEO_FAMILIES else "frame")
    assert loaded.clip_len == (CLIP[0] if family in VIDEO_FAMILIES else None)
    assert loaded.categories == CLASSES
    assert loaded.weights == "DEFAULT"
    assert loaded.name == f"hf:{saved[family]}"
    expected_size = (64, 64) if family in ("convnext", "resnet") else IMAGE
    assert loaded.preprocess.size == expected_size
    activations, logits = layer_activations(loaded, _input(loaded))
    assert tuple(activations.shape) == shape
    assert logits.shape == (2, len(CLASSES))
    assert loaded.sources is not None
    assert loaded.sources["family"] == family
    for key in ("weights", "categories", "mean_std", "input_size", "resize", "layer"):
        assert key in loaded.sources
    assert ("clip_len" in loaded.sources) == (family in VIDEO_FAMILIES)


def test_adapter_is_the_hf_model(saved: dict[str, Path]) -> None:
    """The adapter's parameters, buffers, state dict, layer names and training flags are the
    model's own: the model is its one child, named by the model's own names."""
    loaded = load_model(f"hf:{saved['videomae']}")
    adapter = loaded.module
    assert isinstance(adapter, HFClassifier)
    model = adapter.hf_model
    assert [id(p) for p in adapter.parameters()] == [id(p) for p in model.parameters()]
    assert [id(b) for b in adapter.buffers()] == [id(b) for b in model.buffers()]
    assert list(adapter.state_dict()) == list(model.state_dict())
    assert list(adapter.children()) == [model]
    # Every layer of the model by its own name, both ways.
    names = [n for n, _ in model.named_modules()][1:]
    modules = [m for _, m in model.named_modules()][1:]
    assert [resolve_layer(adapter, n) for n in names] == modules
    assert [layer_name(adapter, m) for m in modules] == names
    assert not adapter.training
    assert not model.training
    adapter.train()
    assert adapter.training
    assert all(m.training for m in model.modules())
    adapter.eval()
    assert not adapter.training
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in adapter.parameters())
    x = _input(loaded)
    with torch.no_grad():
        direct = model(pixel_values=x.transpose(1, 2)).logits
        torch.testing.assert_close(adapter(x), direct, rtol=0, atol=0)


def test_adapter_state_dict_uses_the_models_keys(saved: dict[str, Path]) -> None:
    """The adapter's state dict has the model's own keys and metadata, loads back into the
    adapter and the model alike, and keeps working inside another module."""
    adapter = load_model(f"hf:{saved['vit']}").module
    assert isinstance(adapter, HFClassifier)
    model = adapter.hf_model
    state = adapter.state_dict()
    assert list(state) == list(model.state_dict())
    assert list(state._metadata) == list(model.state_dict()._metadata)  # type: ignore[attr-defined]
    reference = {k: v.clone() for k, v in state.items()}
    with torch.no_grad():
        for p in adapter.parameters():
            p.zero_()
    assert adapter.load_state_dict(reference) is not None  # strict: no key missing or extra
    torch.testing.assert_close(dict(model.state_dict()), reference, rtol=0, atol=0)
    outer = torch.nn.Sequential(adapter)
    nested = outer.state_dict()
    assert list(nested) == [f"0.{k}" for k in reference]
    with torch.no_grad():
        for p in adapter.parameters():
            p.zero_()
    outer.load_state_dict(nested | {f"0.{k}": v for k, v in reference.items()})
    torch.testing.assert_close(dict(model.state_dict()), reference, rtol=0, atol=0)


def test_videomae_reading_its_first_patch_uses_the_norm(tmp_path: Path) -> None:
    directory = save_hf("videomae", tmp_path / "v", use_mean_pooling=False)
    loaded = load_model(f"hf:{directory}")
    assert loaded.layer == "videomae.encoder.layer.1.layernorm_before"
    activations, _ = layer_activations(loaded, _input(loaded))
    assert activations.shape == (2, 32, 2, 4, 4)  # no class token to drop: 32 tokens


def test_beit_reading_its_class_token_uses_the_norm(tmp_path: Path) -> None:
    directory = save_hf("beit", tmp_path / "b", use_mean_pooling=False)
    assert load_model(f"hf:{directory}").layer == "beit.layers.1.layernorm_before"


def test_other_layers_get_their_reshape(saved: dict[str, Path]) -> None:
    loaded = load_model(f"hf:{saved['timesformer']}", layer="timesformer.encoder.layer.0")
    activations, _ = layer_activations(loaded, _input(loaded))
    assert activations.shape == (2, 32, 4, 4, 4)
    loaded = load_model(f"hf:{saved['vit']}", layer="vit.layers.-1")
    assert loaded.layer == "vit.layers.1"
    assert layer_activations(loaded, _input(loaded))[0].shape == (2, 32, 4, 4)
    head = load_model(f"hf:{saved['vit']}", layer="classifier")
    assert head.reshape is None


# --- preprocessing from the model's files ---------------------------------------------------


def test_vivit_rescale_with_offset(tmp_path: Path) -> None:
    """ViViT's processor maps pixels to [-1, 1] (x/127.5 - 1) and then normalises with 0.5 /
    0.5: in videocam's units, mean 0.75 and std 0.25 give the same numbers."""
    directory = save_hf("vivit", tmp_path / "v", processor={})
    loaded = load_model(f"hf:{directory}")
    assert loaded.preprocess.mean == pytest.approx((0.75,) * 3)
    assert loaded.preprocess.std == pytest.approx((0.25,) * 3)
    processor = transformers.VivitImageProcessor.from_pretrained(directory)
    frames = torch.randint(0, 256, (1, 4, 32, 32, 3), dtype=torch.uint8)
    ours = loaded.preprocess(frames)  # (1, 3, T, H, W)
    theirs = processor(
        list(frames[0].numpy()), do_resize=False, do_center_crop=False, return_tensors="pt"
    )["pixel_values"]  # (1, T, 3, H, W)
    torch.testing.assert_close(ours, theirs.transpose(1, 2).float(), rtol=1e-5, atol=1e-5)


def test_processor_file_beats_the_class_defaults(tmp_path: Path) -> None:
    imagenet = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    directory = save_hf("videomae", tmp_path / "v", processor=imagenet)
    loaded = load_model(f"hf:{directory}")
    assert loaded.preprocess.mean == pytest.approx(tuple(imagenet["image_mean"]))
    assert loaded.preprocess.std == pytest.approx(tuple(imagenet["image_std"]))
    assert loaded.sources is not None
    assert "preprocessor_config.json" in loaded.sources["mean_std"]
    # A video processor's own file wins over the image processor's for video models.
    transformers.VideoMAEVideoProcessor(image_mean=[0.1, 0.2, 0.3]).save_pretrained(directory)
    again = load_model(f"hf:{directory}")
    assert again.preprocess.mean == pytest.approx((0.1, 0.2, 0.3))
    assert again.sources is not None
    assert "video_preprocessor_config.json" in again.sources["mean_std"]


def test_no_processor_file_takes_transformers_defaults(tmp_path: Path) -> None:
    directory = save_hf("timesformer", tmp_path / "t")  # no processor saved
    loaded = load_model(f"hf:{directory}")
    defaults = transformers.TimesformerVideoProcessor
    assert loaded.preprocess.mean == pytest.approx(tuple(defaults.image_mean))
    assert loaded.sources is not None
    assert "TimesformerVideoProcessor defaults" in loaded.sources["mean_std"]


def test_no_normalisation_and_no_rescale(tmp_path: Path) -> None:
    directory = save_hf("vit", tmp_path / "v", processor={"do_normalize": False})
    loaded = load_model(f"hf:{directory}")
    assert loaded.preprocess.mean == (0.0, 0.0, 0.0)
    assert loaded.preprocess.std == (1.0, 1.0, 1.0)
    directory = save_hf("vit", tmp_path / "w", processor={"do_rescale": False})
    loaded = load_model(f"hf:{directory}")  # pixels 0..255 normalised with 0.5 / 0.5
    assert loaded.preprocess.mean == pytest.approx((0.5 / 255,) * 3)
    assert loaded.preprocess.std == pytest.approx((0.5 / 255,) * 3)


def test_options_override_and_say_so(saved: dict[str, Path]) -> None:
    loaded = load_model(
        f"hf:{saved['convnext']}",
        input_size=(96, 128),
        mean=(0.1, 0.1, 0.1),
        std=(0.2, 0.2, 0.2),
        labels=["x", "y", "z"],
        layer="convnext.encoder.stages.2",
    )
    assert loaded.preprocess.size == (96, 128)
    assert loaded.categories == ("x", "y", "z")
    assert loaded.sources is not None
    for key in ("input_size", "mean", "std", "categories", "layer"):
        assert "given" in loaded.sources[key]
    with pytest.raises(ConfigError, match="only accepts 32x32 frames"):
        load_model(f"hf:{saved['vit']}", input_size=(64, 64))
    with pytest.raises(ConfigError, match="3 classes"):
        load_model(f"hf:{saved['vit']}", labels=["a", "b"])


def test_wrong_clip_length_is_one_clear_line(saved: dict[str, Path]) -> None:
    loaded = load_model(f"hf:{saved['videomae']}")
    with pytest.raises(ConfigError, match=r"takes exactly 4 frames of 32x32.*--clip-len 4"):
        loaded.module(torch.randn(1, 3, 8, 32, 32))
    with pytest.raises(ConfigError, match=r"expected an input \(N, 3, T, H, W\)"):
        loaded.module(torch.randn(1, 3, 32, 32))


# --- weights --------------------------------------------------------------------------------


def test_weights_none_and_a_state_dict_file(saved: dict[str, Path], tmp_path: Path) -> None:
    trained = load_model(f"hf:{saved['vivit']}")
    x = _input(trained)
    with torch.no_grad():
        reference = trained.module(x)
    torch.manual_seed(123)
    random = load_model(f"hf:{saved['vivit']}", weights="none")
    assert random.weights == "none"
    assert random.categories == CLASSES  # the config's id2label still names the head
    with torch.no_grad():
        assert not torch.allclose(random.module(x), reference)
    file = tmp_path / "vivit.pt"
    torch.save(trained.module.state_dict(), file)
    reloaded = load_model(f"hf:{saved['vivit']}", weights=file)
    assert reloaded.weights == str(file)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.module(x), reference)


def test_a_file_with_another_head(saved: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(0)
    five = load_model(f"hf:{saved['vit']}", weights="none", num_classes=5)
    file = tmp_path / "five.pt"
    torch.save(five.module.state_dict(), file)
    loaded = load_model(f"hf:{saved['vit']}", weights=file)
    assert layer_activations(loaded, _input(loaded))[1].shape == (2, 5)
    assert loaded.categories is None  # id2label names 3 classes, the file has 5
    with pytest.raises(ModelLoadError, match="has 3 classes, not num_classes=5"):
        load_model(f"hf:{saved['vit']}", num_classes=5)
    with pytest.raises(ModelLoadError, match="unknown weights 'KINETICS400_V1'"):
        load_model(f"hf:{saved['vit']}", weights="KINETICS400_V1")


def test_a_backbone_without_its_head_is_refused(tmp_path: Path) -> None:
    config = transformers.VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    transformers.VideoMAEModel(config).save_pretrained(tmp_path / "base")
    with pytest.raises(ModelLoadError, match=r"classifier\.weight.*without a trained head"):
        load_model(f"hf:{tmp_path / 'base'}")


# --- errors ---------------------------------------------------------------------------------


def test_directory_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a save_pretrained directory"):
        load_model(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(ModelLoadError, match="directory not found"):
        load_model(f"hf:{tmp_path / 'missing'}")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(f"hf:{tmp_path / 'file.bin'}")
    with pytest.raises(ModelLoadError, match="needs a Hub model ID"):
        load_model("hf:")
    with pytest.raises(ConfigError, match="--frame-model applies to custom models only"):
        load_model(f"hf:{tmp_path / 'empty'}", frame_model=True)


def test_custom_code_is_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    directory = save_hf("vit", tmp_path / "custom")
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageClassification": "modeling_evil.EvilModel"}
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "modeling_evil.py").write_text("raise SystemExit('custom code ran')\n")
    with pytest.raises(ModelLoadError, match="trust_remote_code=False"):
        load_model(f"hf:{directory}")


def test_not_a_classifier(tmp_path: Path) -> None:
    config = transformers.BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelLoadError, match="video and image classification models only"):
        load_model(f"hf:{tmp_path / 'bert'}")


def test_a_family_without_defaults_needs_a_layer(tmp_path: Path) -> None:
    config = transformers.RegNetConfig(
        hidden_sizes=[8, 16, 24, 32],
        depths=[1, 1, 1, 1],
        embedding_size=8,
        groups_width=8,
        num_labels=3,
    )
    transformers.RegNetForImageClassification(config).save_pretrained(tmp_path / "regnet")
    with pytest.raises(ModelLoadError, match=r"'regnet' model.*pass --layer"):
        load_model(f"hf:{tmp_path / 'regnet'}")
    loaded = load_model(f"hf:{tmp_path / 'regnet'}", layer="regnet.encoder.stages.3")
    assert loaded.sources is not None
    assert loaded.sources["family"] == "regnet (untested)"
    activations, logits = layer_activations(loaded, torch.randn(1, 3, 64, 64))
    assert activations.shape == (1, 32, 2, 2)
    assert logits.shape == (1, 3)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hub unreachable, at once (HF_HUB_OFFLINE): the same code path as no network,
    without huggingface_hub's retries."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_a_hub_id_offline_is_one_line(offline: None) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("hf:MCG-NJU/videomae-base-finetuned-kinetics")
    message = str(info.value)
    assert "\n" not in message
    assert "hf:MCG-NJU/videomae-base-finetuned-kinetics" in message
    assert "save_pretrained(DIR)" in message
    assert "--model hf:DIR" in message


def _hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directory: Path) -> str:
    """The Hub's cache, as from_pretrained leaves it, holding the model saved in ``directory``
    (config and weights) as the Hub ID it returns; the processor's files never looked up."""
    import huggingface_hub.constants

    repo_id, commit = "videocam-tests/tiny-vit", "0" * 40
    cache = tmp_path / "hub"
    repo = cache / "models--videocam-tests--tiny-vit"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in directory.iterdir():
        if file.suffix in (".json", ".safetensors") and "processor" not in file.name:
            (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return repo_id


def test_an_unreachable_processor_file_is_an_error(
    offline: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, a Hub model whose config and weights are cached but whose processor files were
    never asked for: the Hub could not say whether they exist, so mean and std are unknown —
    an error naming the file, not transformers' defaults in silence."""
    directory = save_hf("vit", tmp_path / "vit", processor={"image_mean": [0.1, 0.2, 0.3]})
    repo_id = _hub_cache(tmp_path, monkeypatch, directory)
    with pytest.raises(ModelLoadError) as info:
        load_model(f"hf:{repo_id}")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        f"could not reach the Hugging Face Hub for preprocessor_config.json of hf:{repo_id}, "
        "and it is not in the cache"
    )
    assert "--model hf:DIR" in message


def test_a_processor_file_the_hub_said_is_absent_takes_the_defaults(
    offline: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same model once the Hub has answered that it has no processor files (the cache
    keeps the answer): transformers' defaults, said so in the sources."""
    directory = save_hf("vit", tmp_path / "vit")
    repo_id = _hub_cache(tmp_path, monkeypatch, directory)
    absent = tmp_path / "hub" / "models--videocam-tests--tiny-vit" / ".no_exist" / ("0" * 40)
    absent.mkdir(parents=True)
    for name in ("preprocessor_config.json", "processor_config.json"):
        (absent / name).touch()
    loaded = load_model(f"hf:{repo_id}")
    assert loaded.preprocess.mean == pytest.approx(tuple(transformers.ViTImageProcessor.image_mean))
    assert loaded.sources is not None
    assert re.fullmatch(
        rf"transformers' ViTImageProcessor\w* defaults \(hf:{repo_id} has no processor config\)",
        loaded.sources["mean_std"],
    ), loaded.sources["mean_std"]


def test_missing_transformers_names_the_extra(
    saved: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(ModelLoadError, match=r"needs the package transformers.*videocam\[hf\]"):
        load_model(f"hf:{saved['vit']}")


def test_cli_lists_the_families_without_importing_them(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    code = (
        "import sys, json; from videocam.cli import main; main(['models', '--json']); "
        "assert 'transformers' not in sys.modules and 'timm' not in sys.modules"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    rows = json.loads(out)
    families = {(r["name"], r["family"]) for r in rows if r["family"]}
    assert {("hf:ID_OR_DIR", f) for f in HF_FAMILIES} <= families
    assert {("timm:NAME", "vit"), ("timm:NAME", "cnn")} <= families


def test_quiet_hub_holds_back_the_hubs_retry_warnings_and_restores() -> None:
    """Offline, huggingface_hub warns "Retrying in 1s…" ten times before failing; the one error
    line videocam writes must be all the user reads."""
    import logging

    from huggingface_hub.utils import are_progress_bars_disabled
    from huggingface_hub.utils import logging as hub_logging

    from videocam.models.optional import quiet_hub

    class Kept(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    hub = hub_logging.get_logger("huggingface_hub.utils._http")  # where the retries are said
    library = logging.getLogger("huggingface_hub")
    kept = Kept()
    library.addHandler(kept)
    level, bars = library.level, are_progress_bars_disabled()
    try:
        with quiet_hub():
            hub.warning("Retrying in 1s [Retry 1/5].")
            assert are_progress_bars_disabled()
        assert kept.messages == []
        assert (library.level, are_progress_bars_disabled()) == (level, bars)
        hub.warning("Retrying in 2s [Retry 2/5].")  # outside: the Hub's warnings as before
        assert kept.messages == ["Retrying in 2s [Retry 2/5]."]
    finally:
        library.removeHandler(kept)
