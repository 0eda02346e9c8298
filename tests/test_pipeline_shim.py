"""videocam.pipeline, the former home of the analysis API: still importable, with the same
objects, and importing it says it is deprecated (pointing at the importer's line)."""

from __future__ import annotations

import sys

import pytest

import videocam.analysis
import videocam.runtime


def test_importing_the_shim_warns_and_reexports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "videocam.pipeline", raising=False)
    with pytest.warns(DeprecationWarning, match=r"videocam\.pipeline is deprecated") as record:
        import videocam.pipeline as pipeline
    assert [w.filename for w in record] == [__file__]
    for name in pipeline.__all__:
        home = videocam.runtime if name == "model_input" else videocam.analysis
        assert getattr(pipeline, name) is getattr(home, name), name
