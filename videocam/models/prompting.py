"""Asking in words: an image–text dual encoder as a model whose "classes" are prompts.

:class:`PromptScorer` runs the image tower on each frame and returns one score per prompt, the
prompt's probability as the model defines it:

* CLIP-like models: ``softmax`` over the prompts **and** the negatives of ``logit_scale ·
  cos(image, text)`` (``logit_scale`` = exp of the model's own parameter), the prompts' columns
  kept. With one prompt and no negatives, :data:`DEFAULT_NEGATIVES` give the contrast (a
  softmax over one column is always 1);
* SigLIP-like models: ``sigmoid(logit_scale · cos(image, text) + logit_bias)``, each prompt on
  its own (negatives play no part).

The text embeddings are computed once, when the model is built; windows only run the image
tower. Since the scorer's outputs are the scores, the CAM of a prompt is the CAM of its score,
and the single pass, tracks, keyframes, report and exports run unchanged. The libraries:
``hf:`` (:mod:`videocam.models.hf.prompts`) and ``openclip:`` (:mod:`videocam.models.openclip`).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from videocam.errors import ConfigError
from videocam.models.spec import PromptSet

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_NEGATIVES", "PromptScorer", "choose_negatives", "score_definition"]

#: The contrast a CLIP softmax needs when one prompt is given and no negative: generic
#: captions of "something else", so that the prompt's score is its share against them.
DEFAULT_NEGATIVES = ("a photo", "a photo of something else", "a photo of an empty scene")

#: The child the wrapped model is registered under; layer names are its own.
_CHILD = "model"


def choose_negatives(
    score: str, prompts: tuple[str, ...], negatives: tuple[str, ...] | None, name: str
) -> tuple[tuple[str, ...], bool]:
    """(the negatives, whether they are the default set) for a ``score`` of ``prompts``."""
    if score == "sigmoid":
        if negatives:
            logger.warning(
                "%s scores each prompt on its own (sigmoid): --negative plays no part", name
            )
        return tuple(negatives or ()), False
    if negatives:
        return negatives, False
    if len(prompts) == 1:
        return DEFAULT_NEGATIVES, True
    return (), False


def score_definition(score: str, n_prompts: int, n_negatives: int) -> str:
    """How a prompt's score is formed, in words (summary.json → ``prompts.definition``)."""
    if score == "sigmoid":
        return (
            "sigmoid(logit_scale · cos(image, text) + logit_bias), each prompt on its own; "
            "logit_scale and logit_bias are the model's own"
        )
    return (
        f"softmax over the {n_prompts} prompt(s) and {n_negatives} negative(s) of logit_scale · "
        "cos(image, text), logit_scale the model's own; a prompt's column"
    )


class PromptScorer(nn.Module):
    """An image–text model as videocam runs it: frames (N, 3, H, W) → scores (N, prompts).

    The wrapped model (:attr:`model`, its one child) holds every weight; the text embeddings
    are a buffer computed once, unit length, prompts first, then the negatives.
    ``logit_scale`` (the log of the multiplier) and ``logit_bias`` are read from the model at
    each forward, so they are the model's own. The image embedding is transformers'
    ``get_image_features(pixel_values=x).pooler_output``; other libraries override
    :meth:`image_features`.

    Args:
        model: the dual encoder (transformers ``CLIPModel`` / ``SiglipModel``, open_clip's
            ``CLIP``).
        texts: (P + negatives, D) unit text embeddings.
        n_prompts: how many rows of ``texts`` are prompts (the outputs).
        score: ``"softmax"`` (over prompts and negatives) or ``"sigmoid"``.
        name: names the model in errors.
    """

    #: The child whose dotted names are the layer names.
    layer_root_name = _CHILD

    def __init__(
        self, model: nn.Module, texts: torch.Tensor, n_prompts: int, score: str, name: str
    ) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("text_embeds", texts, persistent=False)
        self.n_prompts = n_prompts
        self.score = score
        self.model_name = name
        self.training = model.training

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """The image embeddings (N, D) of frames ``x``, before normalisation."""
        model: Any = self.model
        features: torch.Tensor = model.get_image_features(pixel_values=x).pooler_output
        return features

    def logit_scale(self) -> torch.Tensor:
        """The multiplier of the cosine similarity: exp of the model's ``logit_scale``."""
        model: Any = self.model
        scale: torch.Tensor = model.logit_scale.exp()
        return scale

    def logit_bias(self) -> torch.Tensor | None:
        """The model's ``logit_bias`` for a sigmoid score, else None."""
        bias = getattr(self.model, "logit_bias", None)
        return bias if self.score == "sigmoid" and isinstance(bias, torch.Tensor) else None

    def prompt_set(
        self, prompts: tuple[str, ...], negatives: tuple[str, ...], default: bool
    ) -> PromptSet:
        """The :class:`~videocam.models.spec.PromptSet` this scorer answers."""
        bias = self.logit_bias()
        return PromptSet(
            texts=prompts,
            negatives=negatives,
            negatives_default=default,
            score=self.score,
            logit_scale=float(self.logit_scale().detach()),
            logit_bias=None if bias is None else float(bias.detach()),
            definition=score_definition(self.score, len(prompts), len(negatives)),
        )

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """``logit_scale · cos(image, text)`` (+ ``logit_bias``), (N, P + negatives)."""
        if x.ndim != 4:
            raise ConfigError(
                f"{self.model_name}: expected frames (N, 3, H, W), got shape {tuple(x.shape)}"
            )
        image = self.image_features(x)
        image = image / image.norm(p=2, dim=-1, keepdim=True)
        texts: torch.Tensor = self.text_embeds  # type: ignore[assignment]
        logits: torch.Tensor = image @ texts.to(image.dtype).t() * self.logit_scale()
        bias = self.logit_bias()
        return logits if bias is None else logits + bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each prompt's score (N, P): softmax over prompts and negatives, or the sigmoid."""
        logits = self.similarity(x).float()
        if self.score == "sigmoid":
            return torch.sigmoid(logits[:, : self.n_prompts])
        return torch.softmax(logits, dim=1)[:, : self.n_prompts]
