"""The review pages' data and markup, without a browser: the curves and the score lane's scale,
the JSON that sits in a <script> element, the Content-Security-Policy, the links, the numbers
shown, and the one time format of every rendered output."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import videocam.render.report.page as page_module
from videocam.render.report import (
    batch_row_links,
    encode_array,
    render_page,
    script_json,
    segment_share,
    video_page_data,
    video_stats,
    write_batch_report,
    write_evaluation_report,
    write_video_report,
)
from videocam.render.report.data import track_curves
from videocam.render.report.page import PAGE_KINDS, PAGE_SCRIPTS
from videocam.render.timefmt import clock
from videocam.render.timeline import evidence_level, score_axis_top

MARKUP = '<script>alert(1)</script>"><img src=x onerror=alert(2)><!-- & \u2028\u2029'


def _data_block(text: str) -> str:
    match = re.search(r'<script type="application/json" id="vc-data">(.*?)</script>', text, re.S)
    assert match is not None
    return match.group(1)


# -- arrays and times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "digits", "text"),
    [
        (7.44, 2, "0:07.44"),
        (52.6, 2, "0:52.60"),
        (67.9, 2, "1:07.90"),
        (75.25, 2, "1:15.25"),
        (3725.5, 2, "1:02:05.50"),
        (59.9996, 3, "1:00.000"),  # rounded before it is split: never 0:60.000
        (3599.9996, 3, "1:00:00.000"),
        (1079.9999, 3, "18:00.000"),
        (5.0, 0, "0:05"),
        (0.25, 1, "0:00.3"),  # half up, as the page's Math.round
        (-3.2, 2, "-0:03.20"),
        (-0.001, 2, "0:00.00"),
        (float("nan"), 2, "–"),
    ],
)
def test_clock_is_one_format_for_every_time(seconds: float, digits: int, text: str) -> None:
    assert clock(seconds, digits) == text


def test_encode_array_round_trips() -> None:
    values = np.array([0.0, 0.25, np.nan, 1.5])
    decoded = np.frombuffer(base64.b64decode(encode_array(values)), dtype="<f4")
    np.testing.assert_array_equal(decoded, values.astype(np.float32))
    times = np.array([0.0, 3599.9666666666667])
    decoded = np.frombuffer(base64.b64decode(encode_array(times, "<f8")), dtype="<f8")
    np.testing.assert_array_equal(decoded, times)


# -- escaping ------------------------------------------------------------------------------------


def test_script_json_cannot_break_out_of_its_element() -> None:
    text = script_json({"name": MARKUP, MARKUP: [MARKUP], "x": float("nan")})
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text
    assert "</script" not in text.lower()
    assert "<!--" not in text
    assert text.isascii()
    back = json.loads(text)
    assert back == {"name": MARKUP, MARKUP: [MARKUP], "x": None}


def test_script_json_keeps_undecodable_file_names() -> None:
    name = b"clip-\xff.mp4".decode("utf-8", "surrogateescape")  # a lone surrogate
    text = script_json({"name": name})
    text.encode("utf-8")  # writable as UTF-8
    assert json.loads(text)["name"] == name


def _frames(n: int = 50, fps: float = 25.0) -> pd.DataFrame:
    t = np.arange(n) / fps
    return pd.DataFrame(
        {
            "frame_index": np.arange(n),
            "time_s": t,
            "attribution": 0.5 + 0.5 * np.sin(t),
            "target_score": np.linspace(0, 1, n),
            "is_keyframe": False,
        }
    )


def _summary(name: str = "clip.mp4", label: str = "grow") -> dict:
    return {
        "video": {"path": f"/data/{name}", "fps": 25.0, "duration_s": 2.0, "n_frames": 50},
        "model": {"name": "videocam_tiny", "layer": "block4"},
        "method": "gradcam",
        "target": {"index": 3, "name": label, "video_top_classes": [{"index": 3, "name": label}]},
        "warnings": [MARKUP],
        "decode": {"decode_errors": 0, "skipped_frames": [], "corrupt_frames": []},
    }


def _keyframes() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"rank": 1, "frame_index": 20, "time_s": 0.8, "attribution": 0.9, "image": "k/a b.jpg"},
            {"rank": 2, "frame_index": 40, "time_s": 1.6, "attribution": 0.7, "image": ""},
        ]
    )


def _segments() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "start_frame": 10,
                "end_frame": 19,
                "start_s": 0.4,
                "end_s": 0.76,
                "peak_frame": 15,
                "attribution": 0.8,
            }
        ]
    )


def test_video_page_escapes_every_outside_string(tmp_path: Path) -> None:
    name = MARKUP + ".mp4"
    page = write_video_report(
        tmp_path / "report.html",
        frames=_frames(),
        keyframes=_keyframes(),
        segments=_segments(),
        summary=_summary(name, label=MARKUP),
        name=name,
        tags={"title": MARKUP, MARKUP: "x"},
    )
    text = page.read_text(encoding="utf-8")
    # The only markup is the page's own: no script or img element came from the data.
    assert text.count("<script") == 2  # the JSON data block and the page's code
    assert "<img" not in text
    assert "<!--" not in text
    title = re.search(r"<title>(.*?)</title>", text, re.S)
    assert title is not None
    assert "<" not in title.group(1)
    assert "&lt;script&gt;" in title.group(1)
    data = json.loads(_data_block(text))
    assert data["name"] == name
    assert data["tags"]["title"] == MARKUP
    assert data["summary"]["target"]["name"] == MARKUP
    # Image paths are percent-encoded relative URLs.
    assert data["keyframes"][0]["image"] == "k/a%20b.jpg"


def test_page_policy_allows_exactly_its_inline_code(tmp_path: Path) -> None:
    for kind in PAGE_KINDS:
        text = render_page(kind, "t", {"rows": [], "summary": {}})
        policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
        assert policy is not None
        rules = dict([*part.split(" ", 1), ""][:2] for part in policy.group(1).split("; ") if part)
        assert rules["default-src"] == "'none'"
        assert rules["img-src"] == "'self'"
        assert rules["media-src"] == "'self'"
        assert "unsafe" not in policy.group(1)  # no unsafe-inline, no unsafe-eval
        scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
        styles = re.findall(r"<style>(.*?)</style>", text, re.S)
        assert len(scripts) == 1
        assert len(styles) == 1

        def sha(body: str) -> str:
            digest = hashlib.sha256(body.encode()).digest()
            return f"'sha256-{base64.b64encode(digest).decode()}'"

        assert rules["script-src"] == sha(scripts[0])
        assert rules["style-src"] == sha(styles[0])
        # Inline handlers and style attributes would be refused by the policy: there are none.
        assert not re.search(r"\son[a-z]+=", text)
        assert not re.search(r"\sstyle=", text)
        assert "eval(" not in scripts[0]
        assert "new Function" not in scripts[0]
        assert "innerHTML" not in scripts[0]
    with pytest.raises(ValueError, match="unknown page kind"):
        render_page("other", "t", {})


def test_each_page_joins_its_script_files_in_order() -> None:
    """Every script file of ``assets/`` serves a page (none forgotten, none missing); a page's
    one inline script is its files joined in order: the shared helpers (``common.js``, which
    defines ``VC``) first, its own ``KIND.js``, which runs it, last."""
    assets = Path(page_module.__file__).parent / "assets"
    assert set().union(*PAGE_SCRIPTS.values()) == {path.name for path in assets.glob("*.js")}
    assert set(PAGE_SCRIPTS) == set(PAGE_KINDS)
    for kind, names in PAGE_SCRIPTS.items():
        assert names[:2] == ("common.js", "table.js")
        assert names[-1] == f"{kind}.js"
        (script,) = re.findall(r"<script>(.*?)</script>", render_page(kind, "t", {}), re.S)
        assert script == "\n".join((assets / name).read_text("utf-8") for name in names)


# -- the data of each page -----------------------------------------------------------------------


def test_video_page_data_curves_and_tables() -> None:
    frames = _frames()
    data = video_page_data(
        frames=frames,
        keyframes=_keyframes(),
        segments=_segments(),
        summary=_summary(),
    )
    assert data["n_frames"] == 50
    assert data["fps"] == 25.0
    times = np.frombuffer(base64.b64decode(data["time_s"]), "<f8")
    np.testing.assert_array_equal(times, frames.time_s)
    values = np.frombuffer(base64.b64decode(data["attribution"]["values"]), "<f4")
    np.testing.assert_array_equal(values, frames.attribution.to_numpy(np.float32))
    assert data["attribution"]["max"] == pytest.approx(frames.attribution.max())
    assert [k["rank"] for k in data["keyframes"]] == [1, 2]
    # Each keyframe carries the target score of its frame.
    assert data["keyframes"][1]["target_score"] == pytest.approx(frames.target_score[40])
    assert data["segments"][0]["peak_s"] == pytest.approx(15 / 25)
    assert data["stats"]["segment_share"] == pytest.approx(10 / 50)
    assert data["tracks"] == []
    # The score lane's scale: the round value above the peak (1 here, a probability near 1);
    # no evidence floor in this summary: no level.
    assert data["score_top"] == 1.0
    assert data["evidence_level"] is None


@pytest.mark.parametrize(
    ("peak", "top"),
    [(0.0433, 0.05), (0.02, 0.025), (0.3, 0.5), (0.95, 1.0), (0.004, 0.005), (1.59, 2.0)],
)
def test_score_lane_scale_is_the_timeline_plots(peak: float, top: float) -> None:
    """The page's score lane and timeline.png's score axis share one rule: an ImageNet class
    that peaks at 0.043 gets 0 to 0.05, not 0 to 1; the evidence floor sits at floor x peak."""
    frames = _frames().assign(target_score=lambda f: np.linspace(0, peak, len(f)))
    summary = {**_summary(), "keyframes": {"evidence_floor": 0.25}}
    data = video_page_data(
        frames=frames, keyframes=_keyframes(), segments=_segments(), summary=summary
    )
    scores = frames.target_score.to_numpy()
    assert data["score_top"] == score_axis_top(scores) == top
    assert data["evidence_level"] == evidence_level(scores, 0.25) == pytest.approx(0.25 * peak)
    assert evidence_level(np.zeros(4), 0.25) is None  # no score at all: no floor to draw


def _tracks(frames: pd.DataFrame) -> pd.DataFrame:
    """Long format, one row per frame and class; class 7 lacks the last ten frames."""
    parts = []
    for k, name in ((2, "grow"), (7, "<b>shrink</b>")):
        part = frames[["frame_index", "time_s"]].copy()
        part["class_index"] = k
        part["class_name"] = name
        part["attribution"] = frames.attribution * (k / 10)
        part["target_score"] = frames.target_score / (k + 1)
        parts.append(part if k == 2 else part.iloc[:-10])
    return pd.concat(parts, ignore_index=True)


def test_track_curves_align_with_the_frames() -> None:
    frames = _frames()
    tracks = track_curves(frames, _tracks(frames))
    assert [(t["class_index"], t["class_name"]) for t in tracks] == [
        (2, "grow"),
        (7, "<b>shrink</b>"),
    ]
    np.testing.assert_allclose(tracks[0]["attribution"], frames.attribution * 0.2)
    assert np.isnan(tracks[1]["attribution"][-10:]).all()
    np.testing.assert_allclose(tracks[1]["target_score"][:-10], frames.target_score[:-10] / 8)
    # Rows in another order give the same curves.
    shuffled = _tracks(frames).sample(frac=1.0, random_state=0)
    again = track_curves(frames, shuffled)
    by_class = {t["class_index"]: t for t in again}
    np.testing.assert_array_equal(by_class[7]["attribution"], tracks[1]["attribution"])


def test_video_page_data_has_one_lane_per_track() -> None:
    frames = _frames()
    data = video_page_data(
        frames=frames,
        keyframes=_keyframes(),
        segments=_segments(),
        summary=_summary(),
        tracks=_tracks(frames),
    )
    assert [t["class_name"] for t in data["tracks"]] == ["grow", "<b>shrink</b>"]
    curve = np.frombuffer(base64.b64decode(data["tracks"][1]["attribution"]["values"]), "<f4")
    assert np.isnan(curve[-10:]).all()


def test_video_stats_and_segment_share() -> None:
    frames = _frames(20)
    stats = video_stats(frames, _segments()[:0])
    assert stats == {
        "peak_target_score": pytest.approx(1.0),
        "peak_attribution": pytest.approx(frames.attribution.max()),
        "segment_share": 0.0,
    }
    segments = pd.DataFrame({"start_frame": [0, 4, 15], "end_frame": [2, 5, 30]})
    # frames 0,1,2 + 4,5 + 15..19 = 10 of 20; a frame index gap counts in analysed frames.
    assert segment_share(frames.frame_index.to_numpy(), segments) == 0.5
    assert segment_share(np.array([0, 10, 20, 30]), segments) == 0.75
    assert segment_share(np.array([], dtype=int), segments) is None


def test_batch_row_links_are_relative_and_encoded() -> None:
    row = {
        "output": "a b#c",
        "report": "report.html",
        "top_keyframe_image": "keyframes/rank01_frame000001.jpg",
        "log": "log.txt",
    }
    assert batch_row_links(row) == {
        "report": "a%20b%23c/report.html",
        "thumb": "a%20b%23c/keyframes/rank01_frame000001.jpg",
        "log": "a%20b%23c/log.txt",
    }
    assert batch_row_links({"output": "x", "report": ""}) == {"report": "", "thumb": "", "log": ""}
    # A path cannot climb out of the batch folder or carry a scheme.
    links = batch_row_links({"output": "javascript:alert(1)", "report": "report.html"})
    assert links["report"] == "javascript%3Aalert%281%29/report.html"
    assert batch_row_links({"output": "../x", "report": "../../report.html"})["report"] == (
        "x/report.html"
    )


def test_batch_page_counts_and_rows(tmp_path: Path) -> None:
    rows = [
        {"name": MARKUP, "output": "a", "status": "ok", "target": "grow", "report": "report.html",
         "keyframe_times_s": [1.5, 0.5], "peak_target_score": 0.9},
        {"name": "b.mp4", "output": "b", "status": "failed", "error_type": "DecodeError",
         "error": MARKUP},
        {"name": "c.mp4", "output": "c", "status": "pending"},
        {"name": "d.mp4", "output": "d", "status": "skipped-complete", "target": "grow"},
    ]  # fmt: skip
    page = write_batch_report(tmp_path / "report.html", rows, title=MARKUP, finished=False)
    text = page.read_text(encoding="utf-8")
    assert "<img" not in text
    data = json.loads(_data_block(text))
    assert data["counts"] == {
        "videos": 4,
        "ok": 1,
        "skipped_complete": 1,
        "failed": 1,
        "pending": 1,
    }
    first = data["rows"][0]
    assert first["name"] == MARKUP
    assert first["report"] == "a/report.html"
    assert first["keyframes"] == [1.5, 0.5]  # rank order kept
    assert data["rows"][1]["error"] == MARKUP
    assert data["rows"][1]["report"] == ""
    assert data["finished"] is False


def test_evaluation_page_rows(tmp_path: Path) -> None:
    metrics = pd.DataFrame(
        {
            "path": ["/data/set/a/x.mp4", "/data/set/b/y.mp4"],
            "label": ["grow", MARKUP],
            "predicted": ["grow", "shrink"],
            "correct": [True, False],
            "deletion_auc": [0.2, np.nan],
            "status": ["ok", "ok"],
            "error": ["", ""],
        }
    )
    summary = {"accuracy": 0.5, "confusion_matrix": {"classes": ["grow", MARKUP]}}
    page = write_evaluation_report(tmp_path / "report.html", metrics, summary)
    data = json.loads(_data_block(page.read_text(encoding="utf-8")))
    assert [r["name"] for r in data["rows"]] == ["a/x.mp4", "b/y.mp4"]
    assert [r["correct"] for r in data["rows"]] == [True, False]
    assert data["rows"][1]["deletion_auc"] is None
    assert data["summary"]["confusion_matrix"]["classes"][1] == MARKUP
