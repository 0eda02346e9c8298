"""Tiny random transformers and timm classifiers, built from configs and saved locally.

Each family is a few layers with a small hidden size on tiny images / clips, so that a forward
takes milliseconds; saved with ``save_pretrained`` (transformers) or as a state dict (timm) into
a folder the tests pass as ``hf:DIR`` / ``--weights FILE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


# --- a task that needs the object: the colour of a square, a green look-alike beside it -------


@contextmanager
def reproducible_training() -> Iterator[None]:
    """One torch thread and deterministic algorithms for the duration, as they were afterwards.

    A toy model trained for 150 steps amplifies every rounding difference: with the thread count
    of the machine its sums would add up in another order on another machine, and the training
    land elsewhere. One thread leaves only the CPU's own kernels (vector width) to differ; the
    thresholds the tests set allow for those (measured over seeds and kernels, test_hf_analyze).
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


#: (R, G, B) of the explained square per class (class 2: no such square); green is the
#: distractor every clip has.
COLOURS = {0: (230, 40, 40), 1: (40, 40, 230)}
DISTRACTOR = (40, 200, 40)
TASK_CLASSES = ("red", "blue", "none")


def draw_square(frame: Any, top: int, left: int, side: int, colour: tuple[int, int, int]) -> None:
    """Paint a square into an (…, H, W, 3) frame or clip."""
    frame[..., top : top + side, left : left + side, :] = colour


def colour_batch(n: int, rng: Any, frames: int, size: int = 32, side: int = 10) -> tuple[Any, Any]:
    """n clips (n, 3, frames, size, size), normalised with mean 0.5 / std 0.5, and labels: a
    red or a blue square (classes 0, 1) or none (class 2), and a green distractor, on dark
    noise, all still."""
    import numpy as np

    x = rng.integers(0, 60, size=(n, frames, size, size, 3)).astype(np.float32)
    y = rng.integers(0, len(TASK_CLASSES), size=n)
    for i in range(n):
        r2, c2 = rng.integers(0, size - side, size=2)
        draw_square(x[i, :], int(r2), int(c2), side, DISTRACTOR)
        r, c = rng.integers(0, size - side, size=2)
        if int(y[i]) in COLOURS:
            draw_square(x[i, :], int(r), int(c), side, COLOURS[int(y[i])])
    tensor = torch.from_numpy((x / 255.0 - 0.5) / 0.5).permute(0, 4, 1, 2, 3).contiguous()
    return tensor, torch.from_numpy(y)


def _train(
    model: Any,
    logits_of: Callable[[Any], Any],
    batch: Callable[[Any, int], tuple[Any, Any]],
    *,
    steps: int,
    seed: int,
) -> Any:
    """``steps`` steps of Adam (lr 3e-3) on batches of 16 drawn with ``seed``, on one thread
    with deterministic algorithms (:func:`reproducible_training`); the model in eval mode."""
    import numpy as np

    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    with reproducible_training():
        for _ in range(steps):
            x, y = batch(rng, 16)
            loss = torch.nn.functional.cross_entropy(logits_of(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def train_colour_task(family: str, *, steps: int = 150, seed: int = 0, **overrides: Any) -> Any:
    """A tiny ``family`` model (config ``overrides`` on top) trained on :func:`colour_batch`
    (:func:`_train`); its id2label names the colours."""
    torch.manual_seed(seed)
    model = BUILDERS[family](
        num_labels=len(TASK_CLASSES),
        id2label=dict(enumerate(TASK_CLASSES)),
        label2id={name: i for i, name in enumerate(TASK_CLASSES)},
        **overrides,
    )
    video = family in VIDEO_FAMILIES
    frames = CLIP[0] if video else 1

    def logits_of(x: Any) -> Any:
        return model(pixel_values=x.transpose(1, 2) if video else x[:, :, 0]).logits

    def batch(rng: Any, n: int) -> tuple[Any, Any]:
        return colour_batch(n, rng, frames)

    return _train(model, logits_of, batch, steps=steps, seed=seed)


def train_timm_colour_task(name: str, *, steps: int = 150, seed: int = 0, size: int = 64) -> Any:
    """A timm model (the TASK_CLASSES) trained on :func:`colour_batch` frames of ``size``
    (squares of size·10/32; :func:`_train`)."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=len(TASK_CLASSES))

    def batch(rng: Any, n: int) -> tuple[Any, Any]:
        return colour_batch(n, rng, 1, size=size, side=size * 10 // 32)

    return _train(model, lambda x: model(x[:, :, 0]), batch, steps=steps, seed=seed)


# --- image–text dual encoders (CLIP, SigLIP) asked in words -------------------------------------

#: The tiny tokenizer's vocabulary: its special tokens, then every letter alone and word-final.
_SPECIAL = ("<|startoftext|>", "<|endoftext|>")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def tiny_tokenizer() -> Any:
    """A CLIP BPE tokenizer over single letters (no merges; built offline, no download): a
    word is its letters, the last one word-final."""
    import transformers

    vocab = {token: i for i, token in enumerate(_SPECIAL)}
    for letter in _LETTERS:
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    return transformers.CLIPTokenizer(vocab=vocab, merges=[])


#: Text length of the tiny text encoders, in tokens.
TEXT_LEN = 24

_TOWER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def _dual_config(family: str) -> Any:
    import transformers

    text = {
        **_TOWER,
        "vocab_size": len(_SPECIAL) + 2 * len(_LETTERS),
        "max_position_embeddings": TEXT_LEN,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }
    vision = {**_TOWER, "image_size": IMAGE[0], "patch_size": 8}
    if family == "xclip":
        video = {
            **vision,
            "num_frames": CLIP[0],
            "mit_hidden_size": 16,
            "mit_intermediate_size": 32,
            "mit_num_hidden_layers": 1,
            "mit_num_attention_heads": 2,
        }
        return transformers.XCLIPConfig(
            text_config=text,
            vision_config=video,
            projection_dim=16,
            prompt_layers=1,
            prompt_attention_heads=2,
            prompt_num_attention_heads=2,
            logit_scale_init_value=2.0,
        )
    if family == "clip":
        return transformers.CLIPConfig(
            text_config=text, vision_config=vision, projection_dim=16, logit_scale_init_value=2.0
        )
    return transformers.SiglipConfig(text_config=text, vision_config=vision)


DUAL_FAMILIES = ("clip", "siglip", "xclip")
DUAL_PROCESSORS = {
    "clip": "CLIPImageProcessor",
    "siglip": "SiglipImageProcessor",
    "xclip": "CLIPImageProcessor",
}
_DUAL_CLASSES = {"clip": "CLIPModel", "siglip": "SiglipModel", "xclip": "XCLIPModel"}


def build_dual(family: str, *, seed: int = 0, patch_size: int = 8) -> Any:
    """A random tiny ``family`` dual encoder (CLIPModel, SiglipModel, XCLIPModel on windows of
    4 frames) in eval mode; SigLIP's
    logit bias set away from 0, so that a test sees it."""
    import transformers

    torch.manual_seed(seed)
    config = _dual_config(family)
    config.vision_config.patch_size = patch_size
    model = getattr(transformers, _DUAL_CLASSES[family])(config).eval()
    if family == "siglip":
        with torch.no_grad():
            model.logit_scale.fill_(1.5)
            model.logit_bias.fill_(-0.75)
    return model


def save_dual(
    family: str,
    directory: Path,
    *,
    seed: int = 0,
    model: Any = None,
    tokenizer: bool = True,
    processor: dict[str, Any] | None = None,
) -> Path:
    """A tiny ``family`` dual encoder saved with ``save_pretrained`` into ``directory``, with
    the tiny tokenizer (unless ``tokenizer`` is false) and the family's image processor
    (``processor``: its settings; default: mean 0.5, std 0.25, 32x32)."""
    import transformers

    module = model if model is not None else build_dual(family, seed=seed)
    module.save_pretrained(directory)
    if tokenizer:
        tiny_tokenizer().save_pretrained(directory)
    settings = processor or {
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.25, 0.25, 0.25],
        "size": {"height": IMAGE[0], "width": IMAGE[1]},
        "do_center_crop": False,
    }
    getattr(transformers, DUAL_PROCESSORS[family])(**settings).save_pretrained(directory)
    return directory


def square_on_noise(
    path: Path, n_frames: int, colour: tuple[int, int, int], *, step: int, seed: int, top: int = 8
) -> Path:
    """A lossless clip of ``n_frames`` 48x48 frames of dark noise with a 16-px square of
    ``colour`` moving ``step`` px right per frame (``n_frames`` fps: one second)."""
    import numpy as np

    from videocam.synthetic import write_frames

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_frames):
        frame = rng.integers(0, 80, size=(48, 48, 3)).astype(np.uint8)
        draw_square(frame, top, 4 + step * i, 16, colour)
        frames.append(frame)
    write_frames(path, frames, fps=n_frames, lossless=True)
    return path


def layer_tokens_with_grad(loaded: Any, x: Any, target: int) -> Any:
    """The output of ``loaded``'s layer for ``x`` (taken by a hook, a tuple's first item), with
    its ``.grad`` from a backward of the sum of the ``target`` scores: the activations and
    gradients a CAM by hand needs."""
    module = dict(loaded.module.model.named_modules())[loaded.layer]
    kept: list[Any] = []

    def hook(_m: Any, _a: Any, out: Any) -> None:
        out = out[0] if isinstance(out, tuple) else out
        out.retain_grad()
        kept.append(out)

    handle = module.register_forward_hook(hook)
    try:
        loaded.module(x.clone().requires_grad_(True))[:, target].sum().backward()
    finally:
        handle.remove()
    return kept[0]


def gradcam_by_hand(activations: Any, gradients: Any) -> Any:
    """Grad-CAM from (N, C, *S) activations and gradients: ReLU(Σ_c mean_S(g_c) · A_c)."""
    positions = tuple(range(2, gradients.ndim))
    weights = gradients.mean(dim=positions, keepdim=True)
    return (weights * activations).sum(dim=1).clamp(min=0)


# --- a dual encoder trained to tell "a red square" from "a blue circle" -------------------------

#: The trained dual encoder's captions, by label.
SHAPE_PROMPTS = ("a red square", "a blue circle")
BLUE = (40, 40, 230)


def draw_circle(frame: Any, top: int, left: int, side: int, colour: tuple[int, int, int]) -> None:
    """Paint a disc of diameter ``side`` into an (H, W, 3) frame."""
    import numpy as np

    yy, xx = np.mgrid[0:side, 0:side]
    radius = (side - 1) / 2
    inside = (yy - radius) ** 2 + (xx - radius) ** 2 <= radius * radius
    frame[top : top + side, left : left + side][inside] = colour


def shape_batch(n: int, rng: Any, size: int = 32, side: int = 10) -> tuple[Any, Any]:
    """n frames (n, 3, 1, size, size), normalised with mean 0.5 / std 0.5, and labels: a red
    square (0) or a blue circle (1) on dark noise, with a green square beside it."""
    import numpy as np

    x = rng.integers(0, 60, size=(n, size, size, 3)).astype(np.float32)
    y = rng.integers(0, len(SHAPE_PROMPTS), size=n)
    for i in range(n):
        r2, c2 = rng.integers(0, size - side, size=2)
        draw_square(x[i], int(r2), int(c2), side, DISTRACTOR)
        r, c = rng.integers(0, size - side, size=2)
        if int(y[i]) == 0:
            draw_square(x[i], int(r), int(c), side, COLOURS[0])
        else:
            draw_circle(x[i], int(r), int(c), side, BLUE)
    tensor = torch.from_numpy((x / 255.0 - 0.5) / 0.5).permute(0, 3, 1, 2)[:, :, None]
    return tensor.contiguous(), torch.from_numpy(y)


def train_shape_clip(*, steps: int = 150, seed: int = 0) -> Any:
    """A tiny CLIP (4-px patches: an 8x8 grid) trained contrastively on :func:`shape_batch`
    against the two :data:`SHAPE_PROMPTS` (:func:`_train`)."""
    torch.manual_seed(seed)
    model = build_dual("clip", seed=seed, patch_size=4)
    encoded = tiny_tokenizer()(list(SHAPE_PROMPTS), padding=True)
    ids = torch.tensor(encoded["input_ids"])
    mask = torch.tensor(encoded["attention_mask"])

    def logits_of(x: Any) -> Any:
        return model(input_ids=ids, attention_mask=mask, pixel_values=x[:, :, 0]).logits_per_image

    return _train(model, logits_of, lambda rng, n: shape_batch(n, rng), steps=steps, seed=seed)
