"""Tiny random transformers and timm classifiers, built from configs and saved locally.

Each family is a few layers with a small hidden size on tiny images / clips, so that a forward
takes milliseconds; saved with ``save_pretrained`` (transformers) or as a state dict (timm) into
a folder the tests pass as ``hf:DIR`` / ``--weights FILE``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

CLASSES = ("square", "empty", "noise")

#: (T, H, W) of the tiny video models, (H, W) of the image models.
CLIP = (4, 32, 32)
IMAGE = (32, 32)

_SMALL = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}


def _labels() -> dict[str, Any]:
    return {
        "num_labels": len(CLASSES),
        "id2label": dict(enumerate(CLASSES)),
        "label2id": {name: i for i, name in enumerate(CLASSES)},
    }


def _videomae(**overrides: Any) -> Any:
    import transformers

    config = transformers.VideoMAEConfig(
        image_size=32, patch_size=8, num_frames=4, tubelet_size=2, **_SMALL, **_labels()
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return transformers.VideoMAEForVideoClassification(config)


def _timesformer(**overrides: Any) -> Any:
    import transformers

    config = transformers.TimesformerConfig(
        image_size=32, patch_size=8, num_frames=4, **_SMALL, **_labels()
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return transformers.TimesformerForVideoClassification(config)


def _vivit(**overrides: Any) -> Any:
    import transformers

    config = transformers.VivitConfig(
        image_size=32, num_frames=4, tubelet_size=[2, 8, 8], **_SMALL, **_labels()
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return transformers.VivitForVideoClassification(config)


def _image(config_class: str, model_class: str, **extra: Any) -> Callable[..., Any]:
    def build(**overrides: Any) -> Any:
        import transformers

        config = getattr(transformers, config_class)(**extra, **_labels())
        for key, value in overrides.items():
            setattr(config, key, value)
        return getattr(transformers, model_class)(config)

    return build


_VIT_LIKE = {"image_size": 32, "patch_size": 8, **_SMALL}

#: family -> builder of a random model with the CLASSES.
BUILDERS: dict[str, Callable[..., Any]] = {
    "videomae": _videomae,
    "timesformer": _timesformer,
    "vivit": _vivit,
    "vit": _image("ViTConfig", "ViTForImageClassification", **_VIT_LIKE),
    "deit": _image("DeiTConfig", "DeiTForImageClassification", **_VIT_LIKE),
    "dinov2": _image("Dinov2Config", "Dinov2ForImageClassification", **_VIT_LIKE),
    "dinov2_with_registers": _image(
        "Dinov2WithRegistersConfig",
        "Dinov2WithRegistersForImageClassification",
        num_register_tokens=3,
        **_VIT_LIKE,
    ),
    "beit": _image("BeitConfig", "BeitForImageClassification", **_VIT_LIKE),
    "convnext": _image(
        "ConvNextConfig",
        "ConvNextForImageClassification",
        hidden_sizes=[8, 16, 24, 32],
        depths=[1, 1, 1, 1],
        image_size=32,
    ),
    "resnet": _image(
        "ResNetConfig",
        "ResNetForImageClassification",
        hidden_sizes=[8, 16, 24, 32],
        depths=[1, 1, 1, 1],
        embedding_size=8,
    ),
}

VIDEO_FAMILIES = ("videomae", "timesformer", "vivit")

#: The processor class each family's checkpoints on the Hub save (preprocessor_config.json).
PROCESSORS = {
    "videomae": "VideoMAEImageProcessor",
    "timesformer": "VideoMAEImageProcessor",
    "vivit": "VivitImageProcessor",
    "vit": "ViTImageProcessor",
    "deit": "DeiTImageProcessor",
    "dinov2": "BitImageProcessor",
    "dinov2_with_registers": "BitImageProcessor",
    "beit": "BeitImageProcessor",
    "convnext": "ConvNextImageProcessor",
    "resnet": "ConvNextImageProcessor",
}
IMAGE_FAMILIES = tuple(f for f in BUILDERS if f not in VIDEO_FAMILIES)


def save_hf(
    family: str,
    directory: Path,
    *,
    seed: int = 0,
    processor: dict[str, Any] | None = None,
    processor_class: str | None = None,
    model: Any = None,
    **overrides: Any,
) -> Path:
    """A random ``family`` model saved with ``save_pretrained`` into ``directory``.

    ``processor``: the processor's settings, written with the family's own processor class
    (:data:`PROCESSORS`, or ``processor_class``); None writes no processor config.
    """
    import transformers

    torch.manual_seed(seed)
    module = model if model is not None else BUILDERS[family](**overrides)
    module.eval()
    module.save_pretrained(directory)
    if processor is not None:
        cls = processor_class or PROCESSORS[family]
        getattr(transformers, cls)(**processor).save_pretrained(directory)
    return directory


def save_timm(name: str, path: Path, *, seed: int = 0, **kwargs: Any) -> Path:
    """A random timm model's state dict, saved with ``torch.save``."""
    import timm

    torch.manual_seed(seed)
    module = timm.create_model(name, pretrained=False, **kwargs)
    torch.save(module.state_dict(), path)
    return path
