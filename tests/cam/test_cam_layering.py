"""The cam package imports only lower layers (videocam.models, videocam.errors), torch and numpy."""

from __future__ import annotations

import subprocess
import sys


def test_cam_imports_no_higher_layer_and_no_torchvision() -> None:
    code = (
        "import sys, videocam.cam\n"
        "bad = sorted(m for m in sys.modules if m.startswith('videocam.') and not "
        "m.startswith(('videocam.cam', 'videocam.errors', 'videocam.models')) "
        "or m.split('.')[0] in "
        "('torchvision', 'captum', 'pytorch_grad_cam', 'cv2', 'pandas'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
