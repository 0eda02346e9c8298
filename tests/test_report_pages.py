"""The review pages in a real browser (Playwright driving the system's Chromium): the page of
one video (player, timeline, gallery, keys, ``#t=``), of a batch (sort, filter, search, pages,
links into each video's page) and of an evaluation; and the case of names, tags and labels
full of markup, which must show as text and run nothing.

Every page is opened from ``file://`` with no server; a test fails on any console error,
uncaught exception or request outside the page's folder. Screenshots go to each test's
temporary folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from videocam.cli import main
from videocam.render.report import write_batch_report, write_video_report
from videocam.render.timefmt import clock
from videocam.render.timeline import evidence_level, score_axis_top
from videocam.synthetic import make_clip

from support.browser import (
    current_time,
    launch_browser,
    open_page,
    timeline_x,
    wait_for_time,
    wait_for_video,
)

FPS = 25.0
FRAME_S = 1 / FPS
#: Outside strings that would run script if a page wrote them as markup.
SCRIPT_DIR = "<script>window.__pwned=1<"
SCRIPT_FILE = 'script>"><img src=x onerror=window.__pwned=2>.mp4'
SCRIPT_NAME = f"{SCRIPT_DIR}/{SCRIPT_FILE}"  # shown as <script>window.__pwned=1</script>...
TITLE_TAG = '<script>window.__pwned=3</script>"><img src=x onerror=window.__pwned=4>'
BROKEN = "broken <i>clip<i>.mp4"  # not a video (no "/" in a file name: no closing tag)
LABELS = [
    "background",
    "<script>window.__pwned=5</script>",
    '"><img src=x onerror="window.__pwned=6">',
    "grow & <b>more</b>",
    "shrink</td></tr><tr><td>x",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_browser()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``videocam demo``'s folder: 8 s at 25 fps, three keyframes, one segment."""
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "-o", str(out), "--quiet"]) == 0
    return out


def _keyframes(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "keyframes.csv")


def _no_script_ran(visit: Any) -> None:
    assert visit.page.evaluate("window.__pwned") is None
    assert visit.page.locator("img[src='x']").count() == 0
    visit.assert_clean()


# -- one video -----------------------------------------------------------------------------------


def test_video_page_loads_clean_and_offline(browser: Any, demo: Path, tmp_path: Path) -> None:
    summary = json.loads((demo / "summary.json").read_text())
    assert "report.html" in summary["outputs"]
    visit = open_page(browser, demo / "report.html")
    wait_for_video(visit)
    visit.page.wait_for_function(
        "() => [...document.querySelectorAll('.vc-kf img')].every(i => i.complete)"
    )
    visit.assert_clean()
    requested = {url.rsplit("/", 1)[-1] for url in visit.requests}
    assert {"report.html", "annotated.mp4"} <= requested
    assert {Path(i).name for i in _keyframes(demo).image} <= requested
    page = visit.page
    assert page.locator(".vc-kf").count() == len(_keyframes(demo))
    assert page.evaluate("document.querySelector('.vc-kf img').naturalWidth") > 0
    assert "move_right" in page.locator("#subtitle").inner_text()
    keys = page.locator(".vc-keys").inner_text()
    for key in ("Space", "N", "P", "→", "←"):
        assert key in keys
    summary_text = page.locator("#summary").inner_text()
    for fact in ("videocam_tiny", "block4", "8×8×8", "gradcam", "decord", "versions"):
        assert fact.lower() in summary_text.lower()
    windows = summary["windows"]  # a video model: its windows, how long, how far apart
    assert (
        f"{windows['n_windows']} windows of {windows['clip_len']} frames, stride "
        f"{windows['stride']}" in summary_text
    )
    # Every time on the page in one format (the gallery's as the keyframe images write them).
    first = _keyframes(demo).iloc[0]
    card = page.locator(".vc-kf[data-rank='1'] .vc-kf-time").inner_text()
    assert card == f"{clock(first.time_s)} · frame {first.frame_index}"
    assert page.locator("#segments tbody tr").count() == 1
    visit.shot(tmp_path / "video-page.png")


def test_pages_add_one_global_name(browser: Any, demo: Path, batch: Path, tmp_path: Path) -> None:
    """The pages' scripts keep to their namespace: the one name they add to the window is VC."""
    blank = tmp_path / "blank.html"
    blank.write_text('<!doctype html><title>blank</title><body data-ready="true"></body>\n')
    names = "Object.getOwnPropertyNames(window)"
    own = set(open_page(browser, blank).page.evaluate(names))
    for page in (demo / "report.html", batch / "report.html"):
        visit = open_page(browser, page)
        assert set(visit.page.evaluate(names)) - own == {"VC"}
        visit.assert_clean()


def test_keyframe_click_seeks_to_its_time(browser: Any, demo: Path) -> None:
    second = _keyframes(demo).set_index("rank").loc[2]
    visit = open_page(browser, demo / "report.html")
    wait_for_video(visit)
    visit.page.click(".vc-kf[data-rank='2']")
    t = wait_for_time(visit, second.time_s, FRAME_S)
    assert abs(t - second.time_s) <= FRAME_S
    # The gallery marks the keyframe under the playhead, the readout names it.
    visit.page.wait_for_selector(".vc-kf[data-rank='2'][aria-current='true']")
    assert "keyframe 2" in visit.page.locator("#readout").inner_text()
    visit.assert_clean()


def test_timeline_click_seeks_to_the_time_under_it(browser: Any, demo: Path) -> None:
    visit = open_page(browser, demo / "report.html")
    wait_for_video(visit)
    timeline = visit.page.locator("#timeline")
    assert float(timeline.get_attribute("data-view-start")) == 0.0
    assert float(timeline.get_attribute("data-view-end")) == pytest.approx(8.0, abs=FRAME_S)
    for target in (5.5, 1.25):
        x, y = timeline_x(visit, target)
        visit.page.mouse.click(x, y)
        assert abs(wait_for_time(visit, target, FRAME_S) - target) <= FRAME_S
    visit.assert_clean()


def test_keys_step_through_keyframes_and_frames(browser: Any, demo: Path) -> None:
    times = sorted(_keyframes(demo).time_s)
    visit = open_page(browser, demo / "report.html")
    wait_for_video(visit)
    keyboard = visit.page.keyboard
    for expected in times:  # N: the next keyframe in time order
        keyboard.press("n")
        assert abs(wait_for_time(visit, expected, FRAME_S) - expected) <= FRAME_S
    keyboard.press("n")  # none after the last: stays
    visit.page.wait_for_timeout(100)
    assert abs(current_time(visit) - times[-1]) <= FRAME_S
    keyboard.press("p")
    assert abs(wait_for_time(visit, times[-2], FRAME_S) - times[-2]) <= FRAME_S
    keyboard.press("ArrowRight")  # one frame on
    expected = times[-2] + FRAME_S
    assert abs(wait_for_time(visit, expected, FRAME_S / 2) - expected) <= FRAME_S / 2
    keyboard.press("ArrowLeft")
    keyboard.press("ArrowLeft")
    expected = times[-2] - FRAME_S
    assert abs(wait_for_time(visit, expected, FRAME_S / 2) - expected) <= FRAME_S / 2
    keyboard.press("Space")
    visit.page.wait_for_function("() => !document.getElementById('player').paused")
    keyboard.press("Space")
    visit.page.wait_for_function("() => document.getElementById('player').paused")
    keyboard.press("Home")
    assert wait_for_time(visit, 0.0, FRAME_S) <= FRAME_S
    visit.assert_clean()


def test_fragment_opens_the_page_at_a_time(browser: Any, demo: Path) -> None:
    visit = open_page(browser, demo / "report.html", fragment="t=4.2")
    wait_for_video(visit)
    assert abs(wait_for_time(visit, 4.2, FRAME_S) - 4.2) <= FRAME_S
    # A new fragment on the open page seeks too.
    visit.page.evaluate("location.hash = '#t=1.5'")
    assert abs(wait_for_time(visit, 1.5, FRAME_S) - 1.5) <= FRAME_S
    visit.assert_clean()


def test_timeline_zooms_to_single_frames_and_back(browser: Any, demo: Path, tmp_path: Path) -> None:
    visit = open_page(browser, demo / "report.html")
    wait_for_video(visit)
    page = visit.page
    timeline = page.locator("#timeline")

    def view() -> tuple[float, float]:
        start = float(timeline.get_attribute("data-view-start"))
        return start, float(timeline.get_attribute("data-view-end"))

    x, y = timeline_x(visit, 3.5)
    page.mouse.move(x, y)
    for _ in range(12):
        page.mouse.wheel(0, -400)
    page.wait_for_timeout(100)
    start, end = view()
    assert end - start == pytest.approx(8 * FRAME_S)  # zoomed in to eight frames
    assert start <= 3.5 <= end
    visit.shot(tmp_path / "zoomed-to-frames.png", full_page=False)
    # Clicking the zoomed timeline still seeks where it is clicked.
    target = start + 3.5 * FRAME_S
    x, y = timeline_x(visit, target)
    page.mouse.click(x, y)
    assert abs(wait_for_time(visit, target, FRAME_S / 4) - target) <= FRAME_S / 4
    page.keyboard.press("0")
    assert view() == (0.0, pytest.approx(8.0, abs=FRAME_S))
    # Dragging across the timeline zooms into what was dragged over.
    x0, y = timeline_x(visit, 2.0)
    x1, _ = timeline_x(visit, 5.0)
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=6)
    page.mouse.up()
    start, end = view()
    assert start == pytest.approx(2.0, abs=0.05)
    assert end == pytest.approx(5.0, abs=0.05)
    visit.assert_clean()


def test_column_path_keeps_each_columns_extremes(browser: Any, demo: Path) -> None:
    """``VC.columnPath``: per pixel column the first, lowest, highest and last sample, in time
    order, runs cut at NaN; where columns hold a sample or none: every sample."""
    rng = np.random.default_rng(3)
    visit = open_page(browser, demo / "report.html")
    for n, width in ((3001, 97.0), (40, 400.0), (500, 500.0)):
        x = np.sort(rng.uniform(0, width, n))
        values = rng.random(n).astype(np.float32).astype(np.float64)
        values[[5, 6, n // 2 + 1, n - 1]] = np.nan
        values[20:30] = 0.5  # ties: the first of them is kept
        runs = visit.page.evaluate(
            """([x, v]) => VC.columnPath(Float32Array.from(v.map(a => a === null ? NaN : a)),
                0, v.length, i => x[i])""",
            [x.tolist(), [None if np.isnan(v) else v for v in values]],
        )
        finite = np.flatnonzero(~np.isnan(values))
        expected = []
        for run in np.split(finite, np.flatnonzero(np.diff(finite) > 1) + 1):
            picked: list[int] = []
            columns = np.floor(x[run]).astype(int)
            for c in np.unique(columns):
                members = run[columns == c]
                vals = values[members]
                ends = {members[0], members[np.argmin(vals)], members[np.argmax(vals)], members[-1]}
                picked.extend(sorted(int(k) for k in ends))
            expected.append(picked)
        assert runs == expected
        if n <= width:  # hardly a column with more than one sample: nearly all are kept
            assert sum(map(len, runs)) >= 0.9 * len(finite)


def test_times_read_as_the_images_and_the_clip_write_them(browser: Any, demo: Path) -> None:
    """One time format on every output: the page's ``VC.clock`` writes what
    ``videocam.render.timefmt.clock`` (keyframe images, timeline.png, the clip's strip) does."""
    visit = open_page(browser, demo / "report.html")
    rng = np.random.default_rng(5)
    cases = [
        (12.344, 2), (52.6, 2), (67.9, 2), (75.25, 2), (3725.5, 2), (59.9996, 3),
        (3599.9996, 3), (1079.9999, 3), (0.25, 1), (0.125, 2), (5.0, 0), (-3.2, 2), (0.0, 3),
        (-0.001, 2), (float("nan"), 2),
    ]  # fmt: skip
    seconds, digits = rng.uniform(0, 10_000, 300).tolist(), rng.integers(0, 4, 300).tolist()
    cases += list(zip(seconds, digits, strict=True)) + [(k / 25, 3) for k in range(0, 3000, 7)]
    cases += [(k / 29.97, 2) for k in range(0, 3000, 11)]
    got = visit.page.evaluate(
        "cases => cases.map(([s, d]) => VC.clock(s === null ? NaN : s, d))",
        [[None if np.isnan(s) else s, d] for s, d in cases],
    )
    assert got == [clock(s, d) for s, d in cases]
    assert got[:3] == ["0:12.34", "0:52.60", "1:07.90"]


def test_links_from_the_data_stay_relative(browser: Any, demo: Path) -> None:
    visit = open_page(browser, demo / "report.html")
    for url in ("javascript:alert(1)", "JavaScript:x", "https://example.com/a", "//host/a",
                "data:text/html,x", "\\\\host\\a", " javascript:x", "java\tscript:x",
                "\n//host/a"):  # fmt: skip
        for name in ("href", "src"):
            got = visit.page.evaluate(
                "([n, u]) => VC.el(n === 'href' ? 'a' : 'img', {[n]: u}).getAttribute(n)",
                [name, url],
            )
            assert got is None, (name, url)
    kept = visit.page.evaluate(
        "VC.el('a', {href: 'a%20b/report.html#t=1.000'}).getAttribute('href')"
    )
    assert kept == "a%20b/report.html#t=1.000"


def test_tracks_give_one_lane_per_class(browser: Any, demo: Path, tmp_path: Path) -> None:
    """A hand-made tracks table (the long format of tracks.csv) gets one lane per class."""
    folder = tmp_path / "with-tracks"
    shutil.copytree(demo, folder)
    frames = pd.read_csv(folder / "frames.csv")
    tracks = pd.concat(
        [
            frames[["frame_index", "time_s"]].assign(
                class_index=k,
                class_name=name,
                attribution=frames.attribution * scale,
                target_score=frames.target_score * scale,
            )
            for k, name, scale in (
                (1, "move_right", 1.0),
                (3, "grow <b>&</b>", 0.4),
                (4, "shrink", 0.2),
            )
        ],
        ignore_index=True,
    )
    write_video_report(
        folder / "report.html",
        frames=frames,
        keyframes=pd.read_csv(folder / "keyframes.csv"),
        segments=pd.read_csv(folder / "segments.csv"),
        summary=json.loads((folder / "summary.json").read_text()),
        tracks=tracks,
    )
    visit = open_page(browser, folder / "report.html")
    wait_for_video(visit)
    lanes = json.loads(visit.page.locator("#timeline").get_attribute("data-lanes"))
    assert lanes == ["attribution", "target score", "move_right", "grow <b>&</b>", "shrink"]
    visit.assert_clean()
    visit.shot(tmp_path / "video-page-tracks.png", full_page=False)


# -- the timeline as a picture --------------------------------------------------------------------

#: Frames of the made-up videos, 10 to an hour at 30 fps, and widths of the window, in CSS pixels:
#: from fewer frames than pixel columns to hundreds of frames per column.
CURVE_LENGTHS = [10, 300, 377, 3_000, 108_000]
WINDOW_WIDTHS = [600, 900, 1400, 2000, 2600]

# Per device pixel column of the timeline's base canvas, over rows [y0, y1): how many pixels are
# a curve's (opaque enough and coloured: not the grey grid, lane borders or evidence floor, not
# the faint fill under a curve) and the first such row.
_CURVE_PIXELS = """([y0, y1]) => {
    const canvas = document.getElementById('tl-base');
    const w = canvas.width, data = canvas.getContext('2d').getImageData(0, y0, w, y1 - y0).data;
    const counts = new Array(w).fill(0), first = new Array(w).fill(-1);
    for (let r = 0; r < y1 - y0; r++) {
        for (let x = 0; x < w; x++) {
            const k = 4 * (r * w + x);
            const hi = Math.max(data[k], data[k + 1], data[k + 2]);
            const lo = Math.min(data[k], data[k + 1], data[k + 2]);
            if (data[k + 3] >= 100 && hi - lo > 40) {
                counts[x]++;
                if (first[x] < 0) first[x] = r;
            }
        }
    }
    return {counts: counts, first: first};
}"""


def _made_up_page(
    folder: Path, demo: Path, n: int, *, fps: float = 30.0, peak: float = 0.043, seed: int = 0
) -> tuple[Path, pd.DataFrame]:
    """The page of a made-up analysis of ``n`` frames (no video analysed; the demo's clip plays
    in it): attribution a random walk in [0, 0.5] with one frame at 1 two thirds in, the target
    score a bump that peaks at ``peak`` (near 0 elsewhere), a per-frame model."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=n))
    attribution = 0.5 * (walk - walk.min()) / max(float(np.ptp(walk)), 1e-9)
    attribution[2 * n // 3] = 1.0
    position = np.arange(n)
    score = peak * np.exp(-(((position - n / 2) / max(n / 10, 1.0)) ** 2))
    frames = pd.DataFrame(
        {
            "frame_index": position,
            "time_s": position / fps,
            "attribution": attribution,
            "target_score": score,
            "is_keyframe": False,
        }
    )
    summary = {
        "video": {"path": f"/data/made-up-{n}.mp4", "fps": fps, "duration_s": n / fps},
        "model": {"name": "made_up", "kind": "frame"},
        "method": "gradcam",
        "target": {"index": 656, "name": "minivan"},
        "windows": {"n_windows": n, "clip_len": 1, "stride": 1, "batch_size": 10},
        "keyframes": {"evidence_floor": 0.25},
    }
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo / "annotated.mp4", folder / "annotated.mp4")
    page = write_video_report(
        folder / "report.html",
        frames=frames,
        keyframes=pd.DataFrame(columns=["rank", "frame_index", "time_s", "attribution"]),
        segments=pd.DataFrame(
            columns=["start_frame", "end_frame", "start_s", "end_s", "peak_frame", "attribution"]
        ),
        summary=summary,
    )
    return page, frames


def _lanes(visit: Any) -> list[dict[str, Any]]:
    lanes = json.loads(visit.page.locator("#timeline").get_attribute("data-lane-boxes"))
    assert isinstance(lanes, list)
    return lanes


def _device_x(visit: Any, time_s: float, scale: float) -> float:
    """The x of ``time_s`` on the timeline's canvas, in device pixels."""
    timeline = visit.page.locator("#timeline")
    start = float(timeline.get_attribute("data-view-start"))
    end = float(timeline.get_attribute("data-view-end"))
    left = float(timeline.get_attribute("data-plot-left"))
    width = float(timeline.get_attribute("data-plot-width"))
    return (left + (time_s - start) / (end - start) * width) * scale


def _resize(visit: Any, width: int, scale: float) -> None:
    """Set the window's width and wait until the timeline has been laid out again for it."""
    visit.page.set_viewport_size({"width": width, "height": 1000})
    for _ in range(100):
        laid_out = visit.page.evaluate(
            """() => document.getElementById('tl-base').width ===
                Math.round(Math.max(320, document.getElementById('timeline').clientWidth) *
                    window.devicePixelRatio)"""
        )
        if laid_out and visit.page.evaluate("window.innerWidth") == width:
            return
        visit.page.wait_for_timeout(20)
    raise AssertionError(f"the timeline was not laid out again at {width} px")


def _assert_curves_in_every_column(
    visit: Any, frames: pd.DataFrame, fps: float, scale: float, where: str
) -> None:
    """Both curves have pixels in every device column from the first frame to the end of the
    last (a column at each end left out: antialiasing), and the one-frame attribution peak
    reaches the top of its lane."""
    x0 = _device_x(visit, float(frames.time_s.iloc[0]), scale)
    x1 = _device_x(visit, float(frames.time_s.iloc[-1]) + 1 / fps, scale)
    columns = np.arange(int(np.ceil(x0)) + 1, int(np.floor(x1)) - 1)
    assert len(columns) > 300 * scale, where
    for lane in _lanes(visit)[:2]:
        rows = round(lane["y"] * scale), round((lane["y"] + lane["height"]) * scale)
        pixels = visit.page.evaluate(_CURVE_PIXELS, list(rows))
        counts = np.array(pixels["counts"])
        empty = columns[counts[columns] == 0]
        assert len(empty) == 0, f"{where}, lane at {lane['y']}: {len(empty)} empty columns"
    # The peak frame (attribution 1, the lane's top) is drawn up to the lane's first rows.
    attribution = _lanes(visit)[0]
    assert attribution["top"] == pytest.approx(1.0)
    rows = (
        round(attribution["y"] * scale),
        round((attribution["y"] + attribution["height"]) * scale),
    )
    first = np.array(visit.page.evaluate(_CURVE_PIXELS, list(rows))["first"])
    peak = frames.attribution.to_numpy().argmax()
    x = int(np.floor(_device_x(visit, float(frames.time_s.iloc[peak]), scale)))
    near = first[x - 1 : x + 2]
    assert near.max() >= 0, where
    assert near[near >= 0].min() <= 3 * scale, where


@pytest.mark.parametrize("n", CURVE_LENGTHS)
def test_timeline_draws_its_curves_in_every_pixel_column(
    browser: Any, demo: Path, tmp_path: Path, n: int
) -> None:
    """The whole video's curves at any number of frames per pixel column: fewer frames than
    columns (lines between frames) or far more (each column's extremes), at every width."""
    page, frames = _made_up_page(tmp_path / "page", demo, n)
    visit = open_page(browser, page, width=WINDOW_WIDTHS[0])
    for width in WINDOW_WIDTHS:
        _resize(visit, width, 1.0)
        _assert_curves_in_every_column(visit, frames, 30.0, 1.0, f"{n} frames at {width} px")
        if width == 1400:
            visit.shot(tmp_path / f"timeline-{n}-{width}.png", full_page=False)
    visit.assert_clean()


@pytest.mark.parametrize("n", [377, 108_000])
def test_timeline_draws_in_device_pixels(browser: Any, demo: Path, tmp_path: Path, n: int) -> None:
    """At two device pixels per CSS pixel every device column has the curves too."""
    page, frames = _made_up_page(tmp_path / "page", demo, n)
    visit = open_page(browser, page, width=1400, scale=2.0)
    assert visit.page.evaluate("window.devicePixelRatio") == 2
    for width in (900, 2000):
        _resize(visit, width, 2.0)
        _assert_curves_in_every_column(visit, frames, 30.0, 2.0, f"{n} frames at {width} px x2")
    visit.assert_clean()


def test_score_lane_is_scaled_to_the_score(browser: Any, demo: Path, tmp_path: Path) -> None:
    """An ImageNet class peaking at 0.043: the lane goes from 0 to 0.05 (timeline.png's scale),
    the curve's peak near its top, the evidence floor dotted across it, the scale written at its
    left; the sidebar says the per-frame model saw each frame."""
    page, frames = _made_up_page(tmp_path / "page", demo, 377, fps=12.5, peak=0.043)
    visit = open_page(browser, page)
    scores = frames.target_score.to_numpy()
    lane = _lanes(visit)[1]
    assert lane["top"] == score_axis_top(scores) == 0.05
    assert lane["level"] == pytest.approx(evidence_level(scores, 0.25))
    y, height = lane["y"], lane["height"]

    def row_of(value: float) -> float:  # as the page draws a value, in pixels from the canvas top
        return y + height - 1 - value / lane["top"] * (height - 2)

    first = np.array(visit.page.evaluate(_CURVE_PIXELS, [y, y + height])["first"])
    assert abs(y + first[first >= 0].min() - row_of(scores.max())) <= 2
    # The floor: a dotted grey line across the lane at its level (about 2 pixels in 5).
    floor = round(row_of(lane["level"]))
    line = visit.page.evaluate(
        """y => Array.from(document.getElementById('tl-base').getContext('2d')
                .getImageData(0, y - 1, document.getElementById('tl-base').width, 3).data)""",
        floor,
    )
    rgba = np.array(line).reshape(3, -1, 4).max(axis=0)
    left = int(visit.page.locator("#timeline").get_attribute("data-plot-left"))
    width = int(float(visit.page.locator("#timeline").get_attribute("data-plot-width")))
    plot = rgba[left : left + width]
    dark = (plot[:, 3] > 120) & (plot[:, :3].max(axis=1) < 140) & (np.ptp(plot[:, :3], axis=1) < 30)
    assert dark.mean() > 0.25
    # The scale, in the gutter: text beside the lane's first rows (the top) and last (0).
    gutter = visit.page.evaluate(
        """([x0, x1, y0, y1]) => Array.from(document.getElementById('tl-base').getContext('2d')
                .getImageData(x0, y0, x1 - x0, y1 - y0).data).filter((v, i) => i % 4 === 3 && v)
                .length""",
        [left - 40, left - 5, y, y + 11],
    )
    zero = visit.page.evaluate(
        """([x0, x1, y0, y1]) => Array.from(document.getElementById('tl-base').getContext('2d')
                .getImageData(x0, y0, x1 - x0, y1 - y0).data).filter((v, i) => i % 4 === 3 && v)
                .length""",
        [left - 20, left - 5, y + height - 11, y + height],
    )
    assert gutter > 10
    assert zero > 5
    assert "per frame: 377 frames" in visit.page.locator("#summary").inner_text()
    visit.shot(tmp_path / "score-lane.png", full_page=False)
    visit.assert_clean()


def test_tooltip_tells_the_time_under_the_pointer_after_a_zoom(browser: Any, demo: Path) -> None:
    visit = open_page(browser, demo / "report.html")
    wait_for_video(visit)
    page, timeline, tip = visit.page, visit.page.locator("#timeline"), visit.page.locator("#tl-tip")

    def under(x: float) -> float:  # the time at page x in the current view
        start = float(timeline.get_attribute("data-view-start"))
        end = float(timeline.get_attribute("data-view-end"))
        left = float(timeline.get_attribute("data-plot-left"))
        width = float(timeline.get_attribute("data-plot-width"))
        box = page.locator("#tl-over").bounding_box()
        return start + (x - box["x"] - left) / width * (end - start)

    def shown() -> float:
        t = float(tip.get_attribute("data-time"))
        assert tip.inner_text().startswith(clock(t, 3) + " · frame ")
        return t

    x0, y = timeline_x(visit, 2.0)
    x1, _ = timeline_x(visit, 5.0)
    page.mouse.move(x0, y)
    assert tip.is_visible()
    assert shown() == pytest.approx(2.0, abs=0.02)
    page.mouse.down()
    page.mouse.move(x1, y, steps=6)
    assert shown() == pytest.approx(5.0, abs=0.02)
    page.mouse.up()  # zoomed to 2-5 s; the pointer has not moved, the time under it has
    assert float(timeline.get_attribute("data-view-start")) == pytest.approx(2.0, abs=0.02)
    assert abs(under(x1) - 5.0) > 1.0
    assert tip.is_visible()
    assert shown() == pytest.approx(under(x1), abs=1e-6)
    page.keyboard.press("-")  # zoomed out with a key: the tooltip follows again
    assert shown() == pytest.approx(under(x1), abs=1e-6)
    page.mouse.wheel(0, -400)  # and with the wheel
    page.wait_for_timeout(50)
    assert shown() == pytest.approx(under(x1), abs=1e-6)
    visit.assert_clean()


# -- a batch -------------------------------------------------------------------------------------


def _with_title(src: Path, dst: Path, title: str) -> Path:
    """A copy of ``src`` whose container has the ``title`` tag (packets untouched)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        out.metadata["title"] = title
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished batch: three clips (one named, titled and labelled with markup) and a file
    that is not a video."""
    root = tmp_path_factory.mktemp("batch")
    inputs = root / "in"
    (inputs / "a").mkdir(parents=True)
    make_clip(inputs / "a" / "clip.mp4", n_frames=48, size=(72, 96), event="grow", seed=1)
    make_clip(inputs / "b.mp4", n_frames=48, size=(72, 96), event="move_right", seed=2)
    (inputs / SCRIPT_DIR).mkdir()
    plain = make_clip(root / "plain.mp4", n_frames=48, size=(72, 96), event="shrink", seed=3)
    _with_title(plain.path, inputs / SCRIPT_NAME, TITLE_TAG)
    (inputs / BROKEN).write_text("not a video")
    labels = root / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    out = root / "out"
    code = main(["batch", str(inputs), "-o", str(out), "--labels", str(labels), "--quiet"])
    assert code == 3  # one video failed
    return out


def _rows(visit: Any) -> list[str]:
    """The video names of the batch table's rows, as shown."""
    return visit.page.locator(
        "#videos tbody tr td:nth-child(2) .vc-name > :first-child"
    ).all_inner_texts()


@pytest.mark.slow
def test_batch_page_sorts_filters_and_searches(browser: Any, batch: Path, tmp_path: Path) -> None:
    index = pd.read_csv(batch / "index.csv", keep_default_na=False)
    visit = open_page(browser, batch / "report.html")
    page = visit.page
    visit.page.wait_for_function(
        "() => [...document.querySelectorAll('img.vc-thumb')].every(i => i.complete)"
    )
    visit.assert_clean()
    visit.shot(tmp_path / "batch-page.png")
    assert page.locator("#videos tbody tr").count() == 4
    assert "finished" in page.locator("#state").inner_text().lower()
    # No --method given: the page names the method the videos' summaries record.
    assert " · method gradcam · " in page.locator("#subtitle").inner_text()
    # Failures are listed on their own, with their error type and message.
    assert page.locator("#failures-section").is_visible()
    failure = page.locator("#failures tbody tr").inner_text()
    assert "VideoOpenError" in failure
    assert BROKEN in failure
    # By default the strongest peak target score first; failures (no score) last.
    ok = index[index.status == "ok"].sort_values("peak_target_score", ascending=False)
    names = _rows(visit)
    assert names[:3] == [p.split("/in/", 1)[1] for p in ok.path]
    assert names[3] == BROKEN
    # Sort by name, then reversed.
    page.click("#videos button.vc-sort[data-key='name']")
    by_name = _rows(visit)
    assert sorted(by_name) == sorted(names)
    # The browser's collation places punctuation as it will; names of letters are in order.
    plain = [n for n in by_name if n[0].isalnum()]
    assert plain == sorted(plain, key=str.lower) == ["a/clip.mp4", "b.mp4", BROKEN]
    page.click("#videos button.vc-sort[data-key='name']")
    descending = _rows(visit)
    page.click("#videos button.vc-sort[data-key='name']")
    assert descending == list(reversed(_rows(visit)))
    assert page.locator("#videos th[aria-sort='ascending'] button[data-key='name']").count() == 1
    # Filter by class (the labels are markup: shown as text in the options too).
    grow = LABELS[3]
    assert grow in page.locator("#class-filter").inner_text()
    page.select_option("#class-filter", grow)
    assert _rows(visit) == ["a/clip.mp4"]
    page.select_option("#class-filter", "")
    page.select_option("#status-filter", "failed")
    assert _rows(visit) == [BROKEN]
    page.select_option("#status-filter", "")
    page.fill("#search", "CLIP")  # case-insensitive, any part of the name
    assert sorted(_rows(visit)) == ["a/clip.mp4", BROKEN]
    assert "2 of 4 videos" in page.locator("#shown").inner_text()
    page.fill("#search", "")
    assert len(_rows(visit)) == 4
    visit.assert_clean()


@pytest.mark.slow
def test_batch_links_open_the_video_at_the_keyframe(browser: Any, batch: Path) -> None:
    index = pd.read_csv(batch / "index.csv", keep_default_na=False).set_index("output")
    row = index.loc["a__clip.mp4"]
    times = [float(t) for t in row.top_keyframe_times_s.split(";")]
    visit = open_page(browser, batch / "report.html", root=batch)
    page = visit.page
    page.fill("#search", "a/clip")
    links = page.locator("#videos tbody tr .vc-times a")
    assert links.count() == len(times)
    href = links.nth(0).get_attribute("href")
    assert href == f"a__clip.mp4/report.html#t={times[0]:.3f}"
    links.nth(0).click()
    page.wait_for_url("**/a__clip.mp4/report.html#t=*")
    page.wait_for_selector("body[data-ready='true']", state="attached")
    wait_for_video(visit)
    assert abs(wait_for_time(visit, times[0], FRAME_S) - times[0]) <= FRAME_S
    assert page.locator("#title").inner_text() == "clip.mp4"
    visit.assert_clean()


@pytest.mark.slow
def test_markup_in_names_tags_and_labels_runs_nothing(
    browser: Any, batch: Path, tmp_path: Path
) -> None:
    visit = open_page(browser, batch / "report.html")
    _no_script_ran(visit)
    assert SCRIPT_NAME in _rows(visit)  # the relative path, exactly, as text
    assert visit.page.get_by_text(SCRIPT_NAME, exact=True).count() == 1
    visit.page.close()

    sub = next(p for p in batch.iterdir() if p.is_dir() and p.name.startswith("_script"))
    visit = open_page(browser, sub / "report.html")
    wait_for_video(visit)
    _no_script_ran(visit)
    page = visit.page
    assert page.locator("#title").inner_text() == SCRIPT_FILE
    summary_text = page.locator("#summary").inner_text()
    assert TITLE_TAG in summary_text  # the container's title tag, as text
    assert SCRIPT_NAME in summary_text  # the full path
    explained = json.loads((sub / "summary.json").read_text())["target"]["name"]
    assert explained in LABELS
    assert explained in page.locator("#subtitle").inner_text()
    for label in LABELS[1:]:  # every class name in the top-classes list, as text
        assert label in summary_text
    visit.shot(tmp_path / "markup-video-page.png")


@pytest.mark.slow
def test_batch_page_resumed_and_old_results(batch: Path, tmp_path: Path) -> None:
    """``--resume`` rewrites the page; videos completed before the index had their numbers
    get them back from their tables."""
    out = tmp_path / "out"
    shutil.copytree(batch, out, symlinks=True)
    (out / "report.html").unlink()
    marker = out / "a__clip.mp4" / ".done"
    done = json.loads(marker.read_text())
    for key in ("peak_target_score", "peak_attribution", "segment_share", "top_keyframe_image"):
        del done["result"][key]
    marker.write_text(json.dumps(done))
    inputs = Path(json.loads((batch / "batch.json").read_text())["inputs"])
    labels = str(batch.parent / "labels.txt")
    code = main(["batch", str(inputs), "-o", str(out), "--labels", labels, "--resume", "--quiet"])
    assert code == 3
    before = pd.read_csv(batch / "index.csv", keep_default_na=False).set_index("output")
    after = pd.read_csv(out / "index.csv", keep_default_na=False).set_index("output")
    row = after.loc["a__clip.mp4"]
    assert row.status == "skipped-complete"
    for key in ("peak_target_score", "peak_attribution", "segment_share"):
        assert row[key] == pytest.approx(before.loc["a__clip.mp4", key])
    assert row.top_keyframe_image == before.loc["a__clip.mp4", "top_keyframe_image"] != ""
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "a__clip.mp4/report.html" in text
    assert '"finished":true' in text


def _big_batch_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"cam{i % 3}/clip{i:04d}.mp4",
            "output": f"cam{i % 3}__clip{i:04d}.mp4",
            "status": "failed" if i % 10 == 9 else "ok",
            "target": ["grow", "shrink"][i % 2] if i % 10 != 9 else "",
            "peak_target_score": None if i % 10 == 9 else (i * 37 % 250) / 250,
            "keyframe_times_s": [] if i % 10 == 9 else [i / 10],
            "error_type": "DecodeError" if i % 10 == 9 else "",
            "error": f"frame {i}" if i % 10 == 9 else "",
        }
        for i in range(n)
    ]


def test_batch_page_is_paged(browser: Any, tmp_path: Path) -> None:
    page_path = write_batch_report(tmp_path / "report.html", _big_batch_rows(250), finished=False)
    visit = open_page(browser, page_path)
    page = visit.page
    assert "in progress" in page.locator("#state").inner_text()
    assert page.locator("#videos tbody tr").count() == 100
    assert "showing 1–100" in page.locator("#shown").inner_text()
    first_page = _rows(visit)
    page.click("#pager button[data-page='next']")
    assert "page 2 of 3" in page.locator("#pager").inner_text()
    assert not set(_rows(visit)) & set(first_page)
    page.click("#pager button[data-page='next']")
    assert page.locator("#videos tbody tr").count() == 50
    assert page.locator("#pager button[data-page='next']").is_disabled()
    # Filtering goes back to the first page of what is left.
    page.select_option("#class-filter", "grow")
    assert page.locator("#videos tbody tr").count() == 100
    assert "125 of 250 videos" in page.locator("#shown").inner_text()
    page.fill("#search", "clip012")
    assert sorted(_rows(visit)) == sorted(f"cam{i % 3}/clip{i:04d}.mp4" for i in range(120, 130, 2))
    # Sorting by peak score ascending: the scores shown are in order.
    page.fill("#search", "")
    # It was sorted descending: now ascending.
    page.click("#videos button.vc-sort[data-key='peak_target_score']")
    scores = [float(s) for s in page.locator("#videos tbody tr td:nth-child(5)").all_inner_texts()]
    assert scores == sorted(scores)
    assert page.locator("#failures tbody tr").count() == 25
    visit.assert_clean()


# -- an evaluation -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``videocam evaluate`` over three clips (one labelled wrong) and a missing file."""
    root = tmp_path_factory.mktemp("evaluate")
    for name, event, seed in (
        ("a.mp4", "grow", 1),
        ("b.mp4", "move_right", 2),
        ("c.mp4", "shrink", 3),
    ):
        make_clip(root / name, n_frames=48, size=(72, 96), event=event, seed=seed)
    manifest = root / "manifest.csv"
    manifest.write_text(
        "path,label,event_start_s,event_end_s\n"
        "a.mp4,grow,0.4,1.4\nb.mp4,move_left,,\nc.mp4,shrink,,\nmissing.mp4,grow,,\n"
    )
    out = root / "out"
    assert main(["evaluate", str(manifest), "-o", str(out), "--quiet"]) == 3  # missing.mp4 failed
    return out


@pytest.mark.slow
def test_evaluation_page(browser: Any, evaluation: Path, tmp_path: Path) -> None:
    metrics = pd.read_csv(evaluation / "metrics.csv", keep_default_na=False)
    visit = open_page(browser, evaluation / "report.html")
    page = visit.page
    visit.assert_clean()
    visit.shot(tmp_path / "evaluate-page.png")
    cards = page.locator("#counts").inner_text()
    summary = json.loads((evaluation / "summary.json").read_text())
    assert f"{100 * summary['accuracy']:.1f} %" in cards
    assert page.locator("svg.vc-chart").count() == 2
    assert page.locator("svg.vc-chart polyline").count() == 4  # each curve and its random one
    # The confusion matrix: a row per label, predicted counts; the wrong video off-diagonal.
    matrix = summary["confusion_matrix"]
    assert page.locator(".vc-cm tbody tr").count() == len(matrix["classes"])
    assert page.locator(".vc-cm td.vc-off").count() >= 1
    # The misclassified video first, then the failure, then the rest.
    names = page.locator("#videos tbody tr td:nth-child(1)").all_inner_texts()
    wrong = metrics[metrics.correct.astype(str) == "False"].path.map(lambda p: Path(p).name)
    assert names[0] == wrong.iloc[0] == "b.mp4"
    assert names[1] == "missing.mp4"
    assert "failed" in page.locator("#videos tbody tr").nth(1).inner_text()
    assert "missing.mp4" in page.locator("#failures").inner_text()
    # Sorting by a metric keeps the misclassified first; unticking lets the metric decide.
    page.click("#videos button.vc-sort[data-key='deletion_auc']")
    assert page.locator("#videos tbody tr td:nth-child(1)").all_inner_texts()[0] == "b.mp4"
    page.uncheck("#wrong-first")
    ok = metrics[metrics.status == "ok"].sort_values("deletion_auc", ascending=False)
    shown = page.locator("#videos tbody tr td:nth-child(1)").all_inner_texts()
    assert shown[:3] == [Path(p).name for p in ok.path]
    assert shown[3] == "missing.mp4"  # no value: last whichever the direction
    visit.assert_clean()
