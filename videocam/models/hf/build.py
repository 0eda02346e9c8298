"""Building an ``hf:`` model: the transformers classifier with its weights, wrapped in the
adapter, with its classes, clip length, input size, preprocessing, default layer and reshape —
and where each came from (``Built.sources``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from videocam.errors import ConfigError, ModelLoadError
from videocam.models.hf.adapter import HFClassifier
from videocam.models.hf.defaults import default_layer
from videocam.models.hf.families import HF_FAMILIES, HFFamily
from videocam.models.hf.processor import ProcessorStats, processor_stats
from videocam.models.hf.prompts import PROMPT_FAMILIES, build_prompt_model
from videocam.models.hf.source import (
    Source,
    from_config,
    model_source,
    pretrained,
    read_config,
    transformers_module,
)
from videocam.models.hf.tokens import hf_reshape, pair
from videocam.models.layers import ReshapeFn
from videocam.models.preprocess import Preprocess
from videocam.models.spec import DEFAULT_CLIP_LEN, Built
from videocam.models.weights import (
    WeightsSpec,
    apply_state_dict,
    fit_head,
    load_state_dict_file,
    parse_weights,
)

__all__ = ["build_hf"]


def _model_class(transformers: Any, config: Any, source: Source) -> tuple[Any, str]:
    from transformers.models.auto import modeling_auto

    model_type = str(config.model_type)
    if model_type in modeling_auto.MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES:
        return transformers.AutoModelForVideoClassification, "video"
    if model_type in modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        return transformers.AutoModelForImageClassification, "frame"
    architectures = ", ".join(getattr(config, "architectures", None) or []) or "none"
    raise ModelLoadError(
        f"{source.display} is a {model_type!r} model (architectures: {architectures}); "
        "videocam explains transformers' video and image classification models only"
    )


def _fixed_input(family: HFFamily | None, config: Any, kind: str) -> tuple[int, ...] | None:
    if family is not None and family.tokens == "maps":
        return None
    image_size = getattr(config, "image_size", None)
    if image_size is None:
        return None
    h, w = pair(image_size)
    if kind == "video":
        frames = getattr(config, "num_frames", None)
        return (int(frames), h, w) if frames else None
    return (h, w)


def _categories(config: Any, n_classes: int) -> tuple[str, ...] | None:
    id2label = getattr(config, "id2label", None) or {}
    try:
        names = {int(k): str(v) for k, v in dict(id2label).items()}
    except (TypeError, ValueError):
        return None
    if sorted(names) != list(range(n_classes)):
        return None
    return tuple(names[i] for i in range(n_classes))


def _weighted_model(
    transformers: Any,
    auto: Any,
    config: Any,
    source: Source,
    weights: WeightsSpec,
    num_classes: int | None,
) -> tuple[nn.Module, str, str]:
    """(the model with its weights, the weights label, where they came from, in words).

    A local file's head size is read from the file; ``config.num_labels`` follows the head."""
    if weights.kind == "default":
        if num_classes is not None and num_classes != int(config.num_labels):
            raise ModelLoadError(
                f"{source.display} has {config.num_labels} classes, not num_classes="
                f"{num_classes}; use --weights none or a local state-dict file"
            )
        model = pretrained(transformers, auto, config, source)
        return model, "DEFAULT", f"{source.where} (from_pretrained)"
    if num_classes is not None:
        config.num_labels = num_classes
    state = load_state_dict_file(weights.value) if weights.kind == "file" else None
    model = from_config(auto, config, source)
    if state is None:
        return model, "none", "none: random initialisation from the config"
    if num_classes is None:

        def rebuild(classes: int) -> nn.Module:
            config.num_labels = classes
            return from_config(auto, config, source)

        model, _ = fit_head(
            model, state, int(config.num_labels), rebuild, model_name=source.display
        )
    apply_state_dict(model, state, source=f"file {weights.value}", model_name=source.display)
    label = str(Path(weights.value).expanduser())
    return model, label, f"file {label} (torch.load weights_only=True)"


def _class_names(
    config: Any, saved_classes: int, config_file: str
) -> tuple[tuple[str, ...] | None, str]:
    """The classes' names from ``id2label`` and where they came from, in words."""
    n_classes = int(config.num_labels)
    if n_classes != saved_classes:  # transformers renamed them LABEL_0…: not the model's names
        return None, f"none ({config_file} names {saved_classes} classes, the head has {n_classes})"
    names = _categories(config, n_classes)
    if names is None:
        return None, "none (id2label does not name every class)"
    return names, f"{config_file} id2label"


def _input_size(
    fixed: tuple[int, ...] | None, stats: ProcessorStats, config_file: str
) -> tuple[tuple[int, int], str]:
    if fixed is not None:
        return (fixed[-2], fixed[-1]), f"{config_file} image_size (the position embeddings fix it)"
    if stats.size is not None:
        return stats.size, f"the processor's output size ({stats.origin})"
    return (224, 224), "224x224 (neither the config nor a processor gives a size)"


def _clip_len(config: Any, kind: str, config_file: str) -> tuple[int | None, str | None]:
    """A video model's window length and where it came from (None, None for frame models)."""
    if kind != "video":
        return None, None
    frames = getattr(config, "num_frames", None)
    if frames:
        return int(frames), f"{config_file} num_frames"
    return DEFAULT_CLIP_LEN, f"{DEFAULT_CLIP_LEN} (default)"


def _checked_config(transformers: Any, config: Any, source: Source) -> tuple[Any, str]:
    """(the auto class that builds the model, its kind), refusing what videocam cannot
    explain."""
    auto, kind = _model_class(transformers, config, source)
    if str(config.model_type) == "timesformer" and (
        getattr(config, "attention_type", "") == "space_only"
    ):
        raise ModelLoadError(
            f"{source.display}: TimeSformer with attention_type space_only classifies every "
            "frame on its own; videocam supports divided_space_time and joint_space_time"
        )
    return auto, kind


def _prompts_fit(
    config: Any, source: Source, prompts: tuple[str, ...] | None, num_classes: int | None
) -> bool:
    """Whether the model is asked in words (an image–text model, with prompts); refuses a
    prompt to a classifier, an image–text model without one, and num_classes for one."""
    model_type = str(config.model_type)
    if model_type not in PROMPT_FAMILIES:
        if prompts:
            raise ConfigError(
                f"{source.display} is a {model_type!r} model: --prompt needs an image–text "
                f"model of a family videocam asks in words ({', '.join(PROMPT_FAMILIES)})"
            )
        return False
    if not prompts:
        raise ConfigError(
            f"{source.display} is an image–text model ({model_type}): say what to look for "
            "with --prompt TEXT"
        )
    if num_classes is not None:
        raise ConfigError(f"{source.display}: num_classes does not apply; its classes are prompts")
    return True


def _layer_and_reshape(
    model: nn.Module,
    family: HFFamily | None,
    config: Any,
    name: str,
    fixed: tuple[int, ...] | None,
    sources: dict[str, str],
) -> tuple[str | None, Callable[[nn.Module, str], ReshapeFn | None], str | None]:
    """(the default layer, the reshape factory, the error to raise without a layer): a known
    family's, or none and a hint for an untested one."""

    def reshape_factory(_module: nn.Module, layer_name: str) -> ReshapeFn | None:
        if family is None:
            return None
        return hf_reshape(model, family, config, layer_name, name=name, expected_input=fixed)

    model_type = str(config.model_type)
    if family is None:
        hint = (
            f"{name} is a {model_type!r} model: videocam has no tested default layer or token "
            f"geometry for it; pass --layer with an (N, C, H, W) or (N, C, T, H, W) output "
            f"(families with defaults: {', '.join(HF_FAMILIES)})"
        )
        return None, reshape_factory, hint
    layer, why = default_layer(model, family, config)
    sources["layer"] = f"family default: {why}"
    if family.tokens != "maps":
        sources["tokens"] = family.token_order
    return layer, reshape_factory, None


def build_hf(
    spec: str,
    weights: Any,
    num_classes: int | None,
    prompts: tuple[str, ...] | None = None,
    negatives: tuple[str, ...] | None = None,
) -> Built:
    """Build ``hf:ID_OR_DIR`` with ``weights``: ``DEFAULT`` (the directory's or the Hub's),
    a local state-dict file, or ``none`` (random, from the config); an image–text model
    (CLIP, SigLIP) over ``prompts`` and ``negatives``
    (:func:`~videocam.models.hf.prompts.build_prompt_model`)."""
    weights_spec = parse_weights(weights)
    if weights_spec.kind == "name":
        raise ModelLoadError(
            f"unknown weights {weights_spec.value!r} for {spec}; hf: models take DEFAULT (the "
            "directory's or the Hub's weights), a local state-dict file, or none"
        )
    source = model_source(spec)
    transformers = transformers_module()
    config = read_config(transformers, source)
    if _prompts_fit(config, source, prompts, num_classes):
        assert prompts is not None
        return build_prompt_model(transformers, config, source, weights_spec, prompts, negatives)
    auto, kind = _checked_config(transformers, config, source)
    model_type = str(config.model_type)
    family = HF_FAMILIES.get(model_type)
    config_file = source.file_label("config.json")
    saved_classes = int(config.num_labels)
    model, label, weights_from = _weighted_model(
        transformers, auto, config, source, weights_spec, num_classes
    )
    model.eval()
    sources = {"family": model_type if family else f"{model_type} (untested)"}
    sources["weights"] = weights_from
    categories, sources["categories"] = _class_names(config, saved_classes, config_file)
    fixed = _fixed_input(family, config, kind)
    stats = processor_stats(transformers, source, model_type, kind)
    sources["mean_std"] = stats.source
    size, sources["input_size"] = _input_size(fixed, stats, config_file)
    sources["resize"] = (
        f"whole frame resized to {size[0]}x{size[1]} in the decoder; the processor's own "
        f"resizing ({stats.resize}) is not applied"
    )
    clip_len, clip_from = _clip_len(config, kind, config_file)
    if clip_from is not None:
        sources["clip_len"] = clip_from
    layer, reshape_factory, hint = _layer_and_reshape(
        model, family, config, source.display, fixed, sources
    )
    return Built(
        module=HFClassifier(model, kind, fixed, source.display),
        kind=kind,
        weights=label,
        preprocess=Preprocess(size=size, mean=stats.mean, std=stats.std),
        categories=categories,
        clip_len=clip_len,
        background_class=None,
        default_layer=layer,
        num_classes=int(config.num_labels),
        reshape_factory=reshape_factory,
        fixed_input=fixed,
        sources=sources,
        needs_layer_hint=hint,
    )
