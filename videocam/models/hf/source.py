"""Where an ``hf:`` model comes from (a ``save_pretrained`` directory or a Hub model ID) and
reading its files: the config, the JSON files of its processor and the weights, with one-line
errors.

transformers is imported only here (:func:`transformers_module`) and only when an ``hf:`` model
is loaded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videocam.errors import ModelLoadError, first_line
from videocam.models.hf.families import HF_PREFIX
from videocam.models.optional import import_optional, quiet_hub

logger = logging.getLogger(__name__)

__all__ = [
    "Source",
    "from_config",
    "json_file",
    "load_error",
    "model_source",
    "pretrained",
    "quiet_progress",
    "read_config",
    "transformers_module",
]


def transformers_module() -> Any:
    """``import transformers``, or one error naming the ``videocam[hf]`` extra."""
    return import_optional("transformers", needed_for="--model hf:…")


@contextmanager
def quiet_progress(transformers: Any) -> Iterator[None]:
    """No progress bars, load reports or Hub retry warnings on stderr while loading: the library
    never writes there itself (a missing head is an error of ours instead of transformers'
    warning, a failed download one line)."""
    tf_logging = transformers.utils.logging
    was = tf_logging.is_progress_bar_enabled()
    verbosity = tf_logging.get_verbosity()
    tf_logging.disable_progress_bar()
    tf_logging.set_verbosity_error()
    try:
        with quiet_hub():
            yield
    finally:
        tf_logging.set_verbosity(verbosity)
        if was:
            tf_logging.enable_progress_bar()


@dataclass(frozen=True)
class Source:
    """An ``hf:`` model's origin.

    Attributes:
        spec: as given after the prefix.
        local: the ``save_pretrained`` directory, or None for a Hub model ID.
    """

    spec: str
    local: Path | None

    @property
    def ref(self) -> str:
        """What ``from_pretrained`` takes."""
        return str(self.local) if self.local is not None else self.spec

    @property
    def where(self) -> str:
        """Where the files come from, in words."""
        return str(self.local) if self.local is not None else f"the Hub's {self.spec}"

    @property
    def display(self) -> str:
        """The model's name in messages: ``hf:SPEC``."""
        return f"{HF_PREFIX}{self.spec}"

    def file_label(self, filename: str) -> str:
        """One of the model's files, in words: its path, or ``FILE of ID`` on the Hub."""
        if self.local is not None:
            return f"{self.local}/{filename}"
        return f"{filename} of {self.spec}"


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text


def model_source(spec: str) -> Source:
    """The origin ``hf:ID_OR_DIR`` names: an existing ``save_pretrained`` directory, else a Hub
    model ID (a path-like value that is not a directory is an error)."""
    text = spec.strip()[len(HF_PREFIX) :].strip()
    if not text:
        raise ModelLoadError(
            "--model hf: needs a Hub model ID or a save_pretrained directory: hf:ID_OR_DIR"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"hf:{text}: {path} is not a save_pretrained directory (no config.json in it)"
            )
        return Source(text, path.resolve())
    if path.exists():
        raise ModelLoadError(
            f"hf:{text}: {path} is a file; pass the directory model.save_pretrained(DIR) wrote"
        )
    if _looks_like_path(text):
        raise ModelLoadError(f"hf:{text}: directory not found: {path}")
    return Source(text, None)


def _offline_hint(source: Source) -> str:
    return (
        f"save it on a machine that can reach the Hub with "
        f"AutoModelFor…Classification.from_pretrained('{source.spec}').save_pretrained(DIR) "
        f"(and the processor's save_pretrained(DIR)), then pass --model hf:DIR; "
        f"HF_HUB_OFFLINE=1 skips the Hub's retries when offline"
    )


def load_error(source: Source, what: str, exc: BaseException) -> ModelLoadError:
    """One line for a file of the model that cannot be read: a download that failed (with how
    to work offline) or a file that does not load."""
    if source.local is None and isinstance(exc, OSError):
        return ModelLoadError(
            f"could not download {what} of {source.display} from the Hugging Face Hub "
            f"(no network? {first_line(exc)}): {_offline_hint(source)}"
        )
    return ModelLoadError(
        f"cannot load {what} of {source.display} ({type(exc).__name__}: {first_line(exc)})"
    )


def read_config(transformers: Any, source: Source) -> Any:
    """The model's config (``AutoConfig``), refusing custom code (``trust_remote_code=False``)."""
    try:
        with quiet_progress(transformers):
            config = transformers.AutoConfig.from_pretrained(source.ref, trust_remote_code=False)
    except OSError as exc:
        raise load_error(source, "the config", exc) from exc
    except (ValueError, KeyError) as exc:  # an unknown model_type, custom code refused…
        raise ModelLoadError(
            f"cannot read the config of {source.display}: {first_line(exc)} (videocam runs "
            f"only model code that ships with transformers: trust_remote_code=False)"
        ) from exc
    if getattr(config, "auto_map", None):
        raise ModelLoadError(
            f"{source.display} asks for custom model code (auto_map in its config.json); "
            "videocam never runs code downloaded with a model (trust_remote_code=False)"
        )
    return config


def json_file(transformers: Any, source: Source, filename: str) -> dict[str, Any] | None:
    """A JSON file of the model (its directory, or the Hub / its cache), None when absent.

    On the Hub, "absent" is what the Hub said (or what its cache remembers it said). A file
    that could not be asked for (no network, the Hub unreachable) and is not in the cache is
    an error, not an absent file: the processor's mean and std would otherwise be guessed.

    Raises:
        ModelLoadError: the file is not valid JSON, or the Hub could not be reached for it.
    """
    if source.local is not None:
        path = source.local / filename
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8")
    else:
        resolved = _hub_file(transformers, source, filename)
        if resolved is None:
            return None
        text = Path(resolved).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{source.display}: {filename} is not valid JSON ({exc})") from exc
    return data if isinstance(data, dict) else None


def _hub_file(transformers: Any, source: Source, filename: str) -> str | None:
    """The cached path of a Hub file, None when the Hub says it has no such file."""
    try:
        with quiet_progress(transformers):
            resolved = transformers.utils.cached_file(
                source.spec,
                filename,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
    except OSError as exc:  # gated, permissions, a revision or repository the Hub does not know
        raise load_error(source, filename, exc) from exc
    if resolved is not None:
        return str(resolved)
    # transformers answers None both for "absent" and for "could not ask": the cache tells
    # them apart (a path, or a marker of a file the Hub said it does not have).
    from huggingface_hub import try_to_load_from_cache

    if try_to_load_from_cache(source.spec, filename) is not None:
        return None
    raise ModelLoadError(
        f"could not reach the Hugging Face Hub for {filename} of {source.display}, and it is "
        "not in the cache: without it the mean and std would be guesses, and every map with "
        f"them; run once with network, or {_offline_hint(source)}"
    )


def from_config(auto: Any, config: Any, source: Source) -> nn.Module:
    """The model ``auto`` builds from ``config``, randomly initialised, float32."""
    try:
        module: nn.Module = auto.from_config(config, trust_remote_code=False)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"cannot build {source.display}: {first_line(exc)}") from exc
    return module.to(torch.float32)


def pretrained(
    transformers: Any, auto: Any, config: Any, source: Source, *, what: str = "classifier"
) -> nn.Module:
    """The model ``auto`` loads with its own weights (the directory's, the Hub's), float32,
    refusing weights that leave part of the ``what`` uninitialised."""
    logger.info(
        "loading %s from %s (transformers' cache, else the Hub)", source.display, source.where
    )
    try:
        with quiet_progress(transformers):
            module, info = auto.from_pretrained(
                source.ref,
                config=config,
                dtype=torch.float32,
                trust_remote_code=False,
                weights_only=True,
                output_loading_info=True,
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise load_error(source, "the weights", exc) from exc
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(str(k) for k in info.get("mismatched_keys") or ())
    if missing or mismatched:
        shown = ", ".join([*missing, *mismatched][:4])
        hint = (
            "a pre-trained backbone without a trained head cannot be explained; name a "
            "fine-tuned checkpoint"
            if what == "classifier"
            else "name a complete checkpoint"
        )
        raise ModelLoadError(
            f"the weights of {source.display} do not cover the whole {what} "
            f"({len(missing)} missing, {len(mismatched)} mismatched: {shown}): {hint}"
        )
    module_: nn.Module = module
    return module_
