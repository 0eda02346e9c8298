"""A loaded model's target-layer activations, as the CAM engine sees them, for the model tests."""

from __future__ import annotations

import torch

from videocam.models import LoadedModel, resolve_layer


def layer_activations(loaded: LoadedModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The default layer's output of one forward, reshaped to (N, C, *S), and the logits."""
    captured: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, inputs: object, output: object) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)  # type: ignore[arg-type]

    handle = resolve_layer(loaded.module, loaded.layer).register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = loaded.module(x)
    finally:
        handle.remove()
    (raw,) = captured
    return (loaded.reshape(raw, x.shape) if loaded.reshape is not None else raw), logits
