"""Interchange: an analysis's keyframes and segments in the tools reviewers already use.

``videocam export otio|edl|vtt RESULT [-o FILE]`` reads only the contract's files of an
``analyze`` output folder or a ``batch`` OUT (frames.csv, keyframes.csv, segments.csv,
summary.json), so older results export without re-analysis.

- :mod:`~videocam.export.result`: reading RESULT (:func:`read_result`, :func:`read_results`).
- :mod:`~videocam.export.otio`: the OpenTimelineIO timeline (:func:`otio_timeline`).
- :mod:`~videocam.export.edl`: CMX 3600 through OpenTimelineIO's adapter (:func:`edl_text`).
- :mod:`~videocam.export.vtt`: WebVTT chapters (:func:`webvtt_chapters`).
- :mod:`~videocam.export.files`: where the files go and the atomic writes
  (:func:`export_result`).
- :mod:`~videocam.export.deps`: the optional dependencies (``videocam[interchange]``:
  opentimelineio, otio-cmx3600-adapter), imported only by the OTIO and EDL exports.
"""

from __future__ import annotations

from videocam.export.edl import edl_text, edl_timeline
from videocam.export.files import DEFAULT_NAMES, FORMATS, ExportReport, export_result
from videocam.export.otio import otio_json, otio_timeline
from videocam.export.result import ResultSet, VideoResult, read_result, read_results
from videocam.export.vtt import webvtt_chapters

__all__ = [
    "DEFAULT_NAMES",
    "FORMATS",
    "ExportReport",
    "ResultSet",
    "VideoResult",
    "edl_text",
    "edl_timeline",
    "export_result",
    "otio_json",
    "otio_timeline",
    "read_result",
    "read_results",
    "webvtt_chapters",
]
