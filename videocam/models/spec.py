"""The records the model registry hands out: what a model is, and a model ready to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from videocam.models.layers import ReshapeFn
from videocam.models.preprocess import Preprocess

__all__ = [
    "DEFAULT_CLIP_LEN",
    "SYNTHETIC_ONLY_NOTE",
    "Built",
    "DetectorInfo",
    "LoadedModel",
    "ModelCard",
    "ModelInfo",
    "PromptSet",
    "ReshapeFactory",
]

#: Frames per window of a video model that does not fix its own (torchvision's video
#: classifiers, custom builders, a transformers config without ``num_frames``), and of an
#: analysis that names none.
DEFAULT_CLIP_LEN = 16

#: What ``videocam models NAME`` says of a model trained on synthetic clips only.
SYNTHETIC_ONLY_NOTE = (
    "trained on synthetic clips only (moving shapes on plain backgrounds, videocam.synthetic): "
    "a demonstration model, not meant for real footage (analyze warns when a video does not "
    "look like its training clips)"
)


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``videocam models``.

    Attributes:
        name: what ``--model`` accepts.
        kind: ``"video"`` (input (N, 3, T, H, W)) or ``"frame"`` (input (N, 3, H, W), run
            per frame).
        default_layer: the tested default target layer (``--layer``).
        weights: names ``--weights`` accepts besides ``DEFAULT``, a local file and ``none``.
        input_size: (H, W) of the default weights' preprocessing.
        clip_len: default window length in frames (video models), None for frame models.
        source: ``"torchvision"``, ``"bundled"``, ``"transformers"`` or ``"timm"``.
        family: for the rows of the ``hf:`` and ``timm:`` prefixes (``name`` is then
            ``hf:ID_OR_DIR`` or ``timm:NAME``, a pattern rather than a name): the family the row
            describes (``videomae``, ``vit``…); None for a model name.
        note: the family's token layout (what the default layer's reshape undoes), or None.
        task: ``"classification"``, or ``"detection"`` for object detectors (run per frame,
            explained through their detection scores).
    """

    name: str
    kind: str
    default_layer: str
    weights: tuple[str, ...]
    input_size: tuple[int, int] | None
    clip_len: int | None
    source: str
    family: str | None = None
    note: str | None = None
    task: str = "classification"


@dataclass(frozen=True)
class ModelCard:
    """What ``videocam models NAME`` prints about one model (:func:`describe_model`).

    Attributes:
        name: the model name as ``--model`` takes it.
        kind: ``"video"`` or ``"frame"`` (as :class:`ModelInfo`).
        task: ``"classification"`` or ``"detection"``.
        default_layer: the default target layer (``--layer``), None when there is none (custom
            builders: ``--layer`` is required).
        input_size: (H, W) frames are resized to, None when it follows each video (object
            detectors) or must be given (custom builders: ``--input-size``).
        clip_len: default window length (video models), None for frame models.
        weights: the weights described (``KINETICS400_V1``, ``bundled``, a file, ``none``…).
        weights_choices: the names ``--weights`` takes besides ``DEFAULT``, a file and ``none``.
        categories: class names by index, None when the model names none (``--labels``).
        num_classes: the number of outputs when known.
        background_class: the class ``--target auto`` skips, else None.
        source: ``torchvision``, ``bundled``, ``transformers``, ``timm`` or ``custom``.
        notes: other facts worth printing (a bundled model trained on synthetic clips only...).
    """

    name: str
    kind: str
    task: str
    default_layer: str | None
    input_size: tuple[int, int] | None
    clip_len: int | None
    weights: str
    weights_choices: tuple[str, ...]
    categories: tuple[str, ...] | None
    num_classes: int | None
    background_class: int | None
    source: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DetectorInfo:
    """What an object detector's analysis needs to know about it.

    Attributes:
        score_threshold: detections scoring below it count for nothing (``--score-threshold``).
        min_size: short side its own preprocessing resizes to (torchvision's ``min_size``),
            None when it has no such rule.
        max_size: the long side's bound that goes with ``min_size``.
        fixed_size: (H, W) it always resizes to (SSD), else None.
        fit_to_video: the input size follows each video (:func:`fitted_input_size`); False
            when ``--input-size`` fixed it.
    """

    score_threshold: float
    min_size: int | None = None
    max_size: int | None = None
    fixed_size: tuple[int, int] | None = None
    fit_to_video: bool = True


@dataclass(frozen=True)
class PromptSet:
    """What an image–text model was asked to look for, and how its scores are formed.

    Attributes:
        texts: the prompts, in order: class ``i`` of the model is ``texts[i]``.
        negatives: the contrast prompts (no class of their own).
        negatives_default: ``negatives`` are the default set (one prompt, none given).
        score: ``"softmax"`` (CLIP: over prompts and negatives) or ``"sigmoid"`` (SigLIP).
        logit_scale: the model's own multiplier of the cosine similarity (exp of its
            parameter).
        logit_bias: the model's own bias (SigLIP), else None.
        definition: how a prompt's score is formed, in words.
    """

    texts: tuple[str, ...]
    negatives: tuple[str, ...]
    negatives_default: bool
    score: str
    logit_scale: float
    logit_bias: float | None
    definition: str

    def to_dict(self) -> dict[str, object]:
        """summary.json's ``prompts``."""
        return {
            "texts": list(self.texts),
            "negatives": list(self.negatives),
            "negatives_default": self.negatives_default,
            "score": self.score,
            "logit_scale": self.logit_scale,
            "logit_bias": self.logit_bias,
            "definition": self.definition,
        }


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for explanation: in eval mode, on ``device``, parameters frozen.

    Attributes:
        name: the model name (or the custom builder spec).
        kind: ``"video"`` (input (N, 3, T, H, W)) or ``"frame"`` (input (N, 3, H, W)).
        module: the network, ``eval()``, on ``device``, ``requires_grad=False`` everywhere.
        layer: canonical dotted name of the target layer (validated to exist).
        reshape: turns the layer's output into (N, C, *S); None when it already is.
        preprocess: uint8 frames → normalised input.
        categories: class names (index → name), None when unknown.
        weights: what was loaded: an enum name (``"KINETICS400_V1"``), ``"none"``, a file path,
            ``"bundled"`` or ``"builder"`` (a custom builder's own module).
        clip_len: default window length for video models, None for frame models.
        background_class: a class ``--target auto`` should skip, else None.
        device: where ``module`` lives.
        detector: for object detectors (``module`` is then a
            :class:`~videocam.models.detectors.DetectionScores` whose outputs are per-class
            detection masses, not logits), else None.
        sources: where each setting came from (``hf:`` and ``timm:`` models: the files and
            defaults that gave the classes, clip length, input size, mean / std, layer…; an
            option given by the user says so); None for the other models.
        synthetic_only: the model declares it was trained on synthetic clips only (the
            bundled ``videocam_tiny``: ``"training_data": "synthetic"`` in its sidecar json).
        prompts: for an image–text model asked in words (``module`` then outputs one score
            per prompt, already a probability), else None.
    """

    name: str
    kind: str
    module: nn.Module
    layer: str
    reshape: ReshapeFn | None
    preprocess: Preprocess
    categories: tuple[str, ...] | None
    weights: str
    clip_len: int | None
    background_class: int | None
    device: torch.device
    detector: DetectorInfo | None = None
    sources: dict[str, str] | None = None
    synthetic_only: bool = False
    prompts: PromptSet | None = None

    def class_scores(self, output: torch.Tensor) -> torch.Tensor:
        """The model output (N, K) as per-class scores: softmax probabilities of a classifier's
        logits, a detector's detection masses and an image–text model's prompt scores as they
        are."""
        if self.detector is not None or self.prompts is not None:
            return output.float()
        return torch.softmax(output.float(), dim=1)


#: Builds the reshape for (module, canonical layer name); returns None for (N, C, *S) outputs.
ReshapeFactory = Callable[[nn.Module, str], "ReshapeFn | None"]


@dataclass(frozen=True)
class Built:
    """What a model source (torchvision, bundled, custom, hf, timm) hands the registry
    (internal).

    Attributes:
        fixed_input: the (T, H, W) or (H, W) the network was built for and only accepts
            (MViT, ViT), else None.
        num_classes: the number of logits when known (checks ``labels``).
        sources: where each setting came from (see :class:`LoadedModel`).
        needs_layer_hint: the error to raise when no ``layer`` is given and there is no
            default (a model family without a tested default layer).
        synthetic_only: see :class:`LoadedModel`.
        prompts: see :class:`LoadedModel`.
    """

    module: nn.Module
    kind: str
    weights: str
    preprocess: Preprocess | None
    categories: tuple[str, ...] | None
    clip_len: int | None
    background_class: int | None
    default_layer: str | None
    num_classes: int | None
    reshape_factory: ReshapeFactory | None = None
    fixed_input: tuple[int, ...] | None = None
    detector: DetectorInfo | None = None
    sources: dict[str, str] | None = None
    needs_layer_hint: str | None = None
    synthetic_only: bool = False
    prompts: PromptSet | None = None
