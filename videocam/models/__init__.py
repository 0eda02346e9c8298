"""Model registry: torchvision video and image classifiers, bundled models, custom builders,
Hugging Face transformers classifiers (``hf:ID_OR_DIR``) and timm image classifiers
(``timm:NAME``).

``load_model`` returns a :class:`LoadedModel`: the network in eval mode on its device, its
validated target layer, the reshape that turns that layer's output into (N, C, *S), and the
preprocessing that turns uint8 frames into its input. ``list_models`` lists what ``--model``
accepts. torchvision, transformers and timm are imported only when a function needs them.
"""

from __future__ import annotations

from videocam.models.layers import ReshapeFn, resolve_layer
from videocam.models.preprocess import Preprocess
from videocam.models.registry import describe_model, list_models, load_model, resolve_device
from videocam.models.spec import LoadedModel, ModelCard, ModelInfo
from videocam.models.tiny import TinyVideoNet, build_tiny
from videocam.models.weights import load_state_dict_file

__all__ = [
    "LoadedModel",
    "ModelCard",
    "ModelInfo",
    "Preprocess",
    "ReshapeFn",
    "TinyVideoNet",
    "build_tiny",
    "describe_model",
    "list_models",
    "load_model",
    "load_state_dict_file",
    "resolve_device",
    "resolve_layer",
]
