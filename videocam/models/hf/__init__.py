"""Hugging Face ``transformers`` classifiers (``--model hf:ID_OR_DIR``), one module per job.

``ID_OR_DIR`` is a directory written by ``save_pretrained`` or a Hub model ID. Video
classification models (VideoMAE, TimeSformer, ViViT) run on windows; image classification models
(ViT, DeiT, DINOv2, BEiT, ConvNeXt, ResNet…) run per frame. Everything videocam needs comes from
the model's own files: class names from ``config.json``'s ``id2label``, the clip length
(``num_frames``) and input size (``image_size``) from the config, mean / std from the processor's
config (``video_preprocessor_config.json`` / ``preprocessor_config.json``) and else from the
defaults of transformers' own processor class; where each came from is kept in
``LoadedModel.sources`` (summary.json → ``model.sources``).

Loading is transformers' own (``AutoConfig`` / ``AutoModelFor…Classification.from_pretrained``)
with ``trust_remote_code=False`` — a model whose config asks for custom code is refused — float32
weights, safetensors or ``torch.load(weights_only=True)``. transformers is imported only when an
``hf:`` model is loaded.

The modules:

* :mod:`.families`: the families videocam knows (one keyword row each) and their
  ``videocam models`` rows;
* :mod:`.adapter`: :class:`HFClassifier`, the model as videocam runs it;
* :mod:`.defaults`: each family's default layer, found by structure;
* :mod:`.tokens`: token geometry, the reshape of a layer's tokens to (N, C, *S);
* :mod:`.source`: where the model comes from and reading its config and JSON files;
* :mod:`.processor`: the processor's config and arithmetic as mean, std and input size;
* :mod:`.build`: putting it together (:func:`build_hf`).
"""

from videocam.models.hf.adapter import HFClassifier
from videocam.models.hf.build import build_hf
from videocam.models.hf.defaults import default_layer, embedding_layer
from videocam.models.hf.families import HF_FAMILIES, HF_PREFIX, HFFamily, hf_infos, is_hf_spec
from videocam.models.hf.tokens import hf_reshape

__all__ = [
    "HF_FAMILIES",
    "HF_PREFIX",
    "HFClassifier",
    "HFFamily",
    "build_hf",
    "default_layer",
    "embedding_layer",
    "hf_infos",
    "hf_reshape",
    "is_hf_spec",
]
