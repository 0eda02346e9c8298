"""Class activation maps for video and image classifiers.

:func:`compute_cam` is the public entry; :func:`cam_and_output` gives the maps and the logits of
one forward pass, :func:`cam_and_output_classes` the maps of several classes per sample from one
forward and one batched backward through the head (the pipeline's entry); Score-CAM and
Ablation-CAM run their perturbed forwards in batches sized by memory
(:mod:`videocam.cam.perturbation`). Method names come
from one registry, :data:`METHODS`. Imports only torch, numpy and :mod:`videocam.errors` (a lower
layer of the package).
"""

from __future__ import annotations

from videocam.cam.engine import (
    CamOutput,
    Classes,
    ReshapeFn,
    Targets,
    cam_and_output,
    cam_and_output_classes,
    compute_cam,
    target_layer,
    upsample_cam,
)
from videocam.cam.methods import (
    METHODS,
    CamMethod,
    ablationcam,
    eigencam,
    eigengradcam,
    get_method,
    gradcam,
    gradcam_plus_plus,
    hirescam,
    layercam,
    scorecam,
    scorecam_masks,
    xgradcam,
)
from videocam.cam.targets import ClassIndices
from videocam.errors import CamError

__all__ = [
    "METHODS",
    "CamError",
    "CamMethod",
    "CamOutput",
    "ClassIndices",
    "Classes",
    "ReshapeFn",
    "Targets",
    "ablationcam",
    "cam_and_output",
    "cam_and_output_classes",
    "compute_cam",
    "eigencam",
    "eigengradcam",
    "get_method",
    "gradcam",
    "gradcam_plus_plus",
    "hirescam",
    "layercam",
    "scorecam",
    "scorecam_masks",
    "target_layer",
    "upsample_cam",
    "xgradcam",
]
