"""How work executes: the single pass over a video's windows (:mod:`.single_pass`), feeding
frames to the device and results back (:mod:`.feed`), background decoding
(:mod:`.prefetch`), and the resources a run may use (:mod:`.resources`)."""

from videocam.runtime.feed import HostCopies, model_input, window_inputs
from videocam.runtime.prefetch import Inline, Prefetch
from videocam.runtime.resources import (
    AUTO_CANDIDATES,
    auto_batch,
    autocast,
    available_cpus,
    background_decoding,
    cpu_threads,
    threads_per_worker,
)
from videocam.runtime.single_pass import Explained, KeptFrames, SinglePass

__all__ = [
    "AUTO_CANDIDATES",
    "Explained",
    "HostCopies",
    "Inline",
    "KeptFrames",
    "Prefetch",
    "SinglePass",
    "auto_batch",
    "autocast",
    "available_cpus",
    "background_decoding",
    "cpu_threads",
    "model_input",
    "threads_per_worker",
    "window_inputs",
]
