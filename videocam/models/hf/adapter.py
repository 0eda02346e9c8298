"""The adapter that runs a transformers classifier as videocam does: (N, 3, T, H, W) or
(N, 3, H, W) in, logits out, with the wrapped model's own layer names and state-dict keys."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from videocam.errors import ConfigError

__all__ = ["HFClassifier"]

#: The name the wrapped model is registered under (a child of the adapter).
_CHILD = "hf_model"


class HFClassifier(nn.Module):
    """A transformers classifier as videocam runs it: (N, 3, T, H, W) or (N, 3, H, W) → logits.

    Video models take ``pixel_values`` (N, T, C, H, W) and every transformers classifier returns
    an output object; this adapter transposes the input and returns ``.logits``. The model is
    its one child, :attr:`hf_model`, and it holds no weights of its own, so ``parameters()``,
    ``train()`` / ``eval()`` and ``requires_grad_()`` reach the model's own.

    Names are the model's own, without the child's: layer names (``--layer``,
    :func:`~videocam.models.layers.resolve_layer`, ``LoadedModel.layer``) are those of the
    transformers model's ``named_modules()`` (``videomae.encoder.layer.11``,
    ``vit.layers.11.layernorm_before``) through ``layer_root_name`` (see
    :func:`~videocam.models.layers.layer_root`), and ``state_dict()`` / ``load_state_dict()``
    use the model's keys, so that a state dict saved from either loads into both.

    Args:
        model: the ``…ForVideoClassification`` / ``…ForImageClassification`` module.
        kind: ``"video"`` or ``"frame"``.
        expected_input: the (T, H, W) or (H, W) the model only accepts, else None.
        name: names the model in errors.
    """

    #: The child whose dotted names are the layer names.
    layer_root_name = _CHILD

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        expected_input: tuple[int, ...] | None,
        name: str,
    ) -> None:
        super().__init__()
        self.hf_model = model
        self.kind = kind
        self.expected_input = expected_input
        self.model_name = name
        self.input_name = str(getattr(model, "main_input_name", "pixel_values"))
        self.training = model.training
        self.register_state_dict_post_hook(_drop_child_prefix)
        self.register_load_state_dict_pre_hook(_add_child_prefix)

    @property
    def config(self) -> Any:
        """The wrapped model's config."""
        return self.hf_model.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) for ``x`` (N, 3, T, H, W) (video) or (N, 3, H, W) (frame)."""
        ndim = 5 if self.kind == "video" else 4
        if x.ndim != ndim:
            layout = "(N, 3, T, H, W)" if ndim == 5 else "(N, 3, H, W)"
            raise ConfigError(
                f"{self.model_name}: expected an input {layout}, got shape {tuple(x.shape)}"
            )
        expected = self.expected_input
        if expected is not None and tuple(x.shape[-len(expected) :]) != tuple(expected):
            raise ConfigError(self._size_message(tuple(x.shape[2:])))
        pixel_values = x.transpose(1, 2) if self.kind == "video" else x
        output = self.hf_model(**{self.input_name: pixel_values})
        logits = getattr(output, "logits", None)
        if logits is None:
            logits = output[0]
        result: torch.Tensor = logits
        return result

    def _size_message(self, got: tuple[int, ...]) -> str:
        expected = self.expected_input or ()
        if self.kind == "video":
            t, h, w = expected
            return (
                f"{self.model_name} takes exactly {t} frames of {h}x{w} (its position "
                f"embeddings fix them), got {got[0]} frames of {got[1]}x{got[2]}: use "
                f"--clip-len {t} (and no --input-size)"
            )
        return (
            f"{self.model_name} takes exactly {expected[0]}x{expected[1]} frames (its position "
            f"embeddings fix them), got {got[0]}x{got[1]}"
        )


def _drop_child_prefix(
    module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: dict[str, Any]
) -> None:
    """State-dict post-hook: ``<prefix>hf_model.<key>`` → ``<prefix><key>``, in place and in
    order (the child's entries are the last ones added), its metadata too."""
    inner = f"{prefix}{_CHILD}."
    for key in [k for k in state if k.startswith(inner)]:
        state[prefix + key[len(inner) :]] = state.pop(key)
    metadata: OrderedDict[str, Any] | None = getattr(state, "_metadata", None)
    if metadata is not None:
        child = f"{prefix}{_CHILD}"
        for key in [k for k in metadata if k == child or k.startswith(inner)]:
            renamed = prefix[:-1] if key == child else prefix + key[len(inner) :]
            metadata[renamed] = metadata.pop(key)


def _add_child_prefix(module: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
    """Load-state-dict pre-hook: ``<prefix><key>`` → ``<prefix>hf_model.<key>``, in place, so
    that the model's own keys load into its child."""
    inner = f"{prefix}{_CHILD}."
    for key in [k for k in state if k.startswith(prefix) and not k.startswith(inner)]:
        state[inner + key[len(prefix) :]] = state.pop(key)
