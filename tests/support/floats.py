"""How closely two runs of the same float32 model agree when their sums add up in another order.

Worker processes with another thread count, another CPU (AVX2 or AVX-512 kernels) or another
library kernel sum the same terms in another order; float32 rounds each partial sum (eps32 =
1.19e-7), so results move in their last digits and are not bit-identical. The tolerance follows
from the arithmetic of ``videocam_tiny``, whose metrics the tests compare: its longest reduction
is 1728 terms (block4: 64 channels x 27 taps); reordered, such a sum moves by about
sqrt(1728)·eps32 = 5e-6 relative (rounding errors add like a random walk; 1728·eps32 = 2e-4 is
the worst-case bound), and its five layers in a row about sqrt(5) times that, 1.1e-5: 2e-5,
relative and absolute (the metrics are probabilities, their ratios and differences, of order 1).
Measured on three test clips (``evaluate --steps 4``): 1 and 2 threads agree to the bit on an
AVX2 CPU; ATen's, oneDNN's and MKL's generic kernels against their AVX2 ones differ by at most
1.3e-6 (average_drop), a deletion AUC by 1.2e-7.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

#: Relative and absolute tolerance between two runs of the same float32 computation.
RUNS_TOL = 2e-5


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal tables: every column, row and non-float cell exactly, float cells to RUNS_TOL."""
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=RUNS_TOL, atol=RUNS_TOL)


def approx_runs(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, numbers, strings, None) with every float compared to
    RUNS_TOL: ``got == approx_runs(expected)``."""
    if isinstance(value, dict):
        return {k: approx_runs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(approx_runs(v) for v in value)
    if isinstance(value, float):
        return pytest.approx(value, rel=RUNS_TOL, abs=RUNS_TOL, nan_ok=True)
    return value
