"""Load time of the review pages in Chromium: an hour-long video's page and a 10,000-video batch.

Generates the tables (no model runs): an hour at 30 fps (108,000 frames) with five keyframes,
forty segments and, in a second case, three class tracks; and a batch of 10,000 rows (5 %
failed, 2 % pending) whose thumbnails are hard links to one small image. Each page is written
with the package's own writers, then opened in headless Chromium (Playwright, the system's
``/usr/bin/chromium``) from ``file://`` in a fresh page, several times; "load" is the time from
the navigation's start to the page's first frame drawn after its script ran (``data-ready``
set, then one ``requestAnimationFrame``), from the browser's own clock. It also times what a
reviewer does next: zooming the hour-long timeline to a few seconds and back, sorting and
searching the batch.

    python benchmarks/report_load.py              # 5 loads per page
    python benchmarks/report_load.py --quick      # 2 loads per page

Prints a table and writes benchmarks/results/report_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "report_load.json"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FPS = 30
HOUR_FRAMES = 108_000
BATCH_ROWS = 10_000


def hour_tables(n_frames: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """frames, keyframes, segments and tracks tables of a long video: slow noise with events."""
    rng = np.random.default_rng(seed)
    times = np.arange(n_frames) / FPS
    noise = np.convolve(rng.random(n_frames), np.ones(90) / 90, mode="same")
    attribution = 0.05 + 0.1 * noise
    score = 0.1 + 0.2 * noise
    starts = np.sort(rng.choice(n_frames - 400, size=40, replace=False))
    segments = []
    for start in starts:
        length = int(rng.integers(60, 300))
        attribution[start : start + length] += 0.4 * np.hanning(length)
        score[start : start + length] = np.maximum(score[start : start + length], 0.9)
        peak = start + length // 2
        segments.append(
            {
                "start_frame": start + length // 6,
                "end_frame": start + 5 * length // 6,
                "start_s": times[start + length // 6],
                "end_s": times[start + 5 * length // 6],
                "peak_frame": peak,
                "attribution": float(attribution[start : start + length].mean()),
            }
        )
    top = np.argsort(-attribution, kind="stable")
    picked: list[int] = []
    for frame in top:
        if all(abs(frame - p) > FPS for p in picked):
            picked.append(int(frame))
        if len(picked) == 5:
            break
    frames = pd.DataFrame(
        {
            "frame_index": np.arange(n_frames),
            "time_s": times,
            "attribution": attribution,
            "target_score": np.clip(score, 0, 1),
            "is_keyframe": np.isin(np.arange(n_frames), picked),
        }
    )
    keyframes = pd.DataFrame(
        [
            {
                "rank": rank,
                "frame_index": frame,
                "time_s": times[frame],
                "attribution": attribution[frame],
                "image": f"keyframes/rank{rank:02d}_frame{frame:06d}.jpg",
            }
            for rank, frame in enumerate(picked, start=1)
        ]
    )
    tracks = pd.concat(
        [
            pd.DataFrame(
                {
                    "frame_index": np.arange(n_frames),
                    "time_s": times,
                    "class_index": k,
                    "class_name": f"class {k}",
                    "attribution": attribution * (1 - 0.3 * k),
                    "target_score": np.clip(score * (1 - 0.2 * k), 0, 1),
                }
            )
            for k in range(3)
        ],
        ignore_index=True,
    )
    return {
        "frames": frames,
        "keyframes": keyframes,
        "segments": pd.DataFrame(segments),
        "tracks": tracks,
    }


def hour_summary(n_frames: int) -> dict[str, Any]:
    return {
        "video": {
            "path": "/footage/hour.mp4",
            "fps": float(FPS),
            "n_frames": n_frames,
            "width": 1280,
            "height": 720,
            "duration_s": n_frames / FPS,
            "codec": "h264",
            "rotation": 0,
        },
        "model": {
            "name": "r3d_18",
            "kind": "video",
            "weights": "KINETICS400_V1",
            "layer": "layer4",
            "layer_map_shape": [2, 7, 7],
        },
        "method": "gradcam",
        "target": {
            "index": 3,
            "name": "class 3",
            "auto": True,
            "video_top_classes": [
                {"index": k, "name": f"class {k}", "mean_prob": p}
                for k, p in ((3, 0.41), (0, 0.22), (1, 0.12), (2, 0.08), (4, 0.05))
            ],
        },
        "decode": {"decode_errors": 0, "skipped_frames": [], "corrupt_frames": []},
        "decoder": {"requested": "auto", "backend": "decord", "reason": None},
        "warnings": ["layer layer4 has 2 time step(s) for 16-frame windows: coarse in time"],
        "timings_s": {"analysis_s": 1200.0},
        "versions": {"videocam": "bench"},
        "config": {},
    }


def write_media(folder: Path, keyframes: pd.DataFrame) -> None:
    """A short real clip as annotated.mp4 and one small image per keyframe."""
    from videocam.synthetic import make_clip

    make_clip(folder / "annotated.mp4", n_frames=60, size=(144, 256), event="grow", seed=1)
    image = thumbnail(folder)
    (folder / "keyframes").mkdir(exist_ok=True)
    for name in keyframes.image:
        shutil.copyfile(image, folder / name)


def thumbnail(folder: Path) -> Path:
    from PIL import Image

    path = folder / "thumb.jpg"
    pixels = np.linspace(0, 255, 96 * 54 * 3).reshape(54, 96, 3).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=80)
    return path


def batch_rows(folder: Path, n_rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows of a large batch; each sub-folder holds a hard link to one thumbnail."""
    rng = np.random.default_rng(seed)
    image = thumbnail(folder)
    classes = [f"class_{k}" for k in range(12)]
    rows = []
    for i in range(n_rows):
        status = "failed" if i % 20 == 7 else "pending" if i % 50 == 11 else "ok"
        name = f"site{i % 37:02d}/camera{i % 5}/clip_{i:05d}.mp4"
        output = name.replace("/", "__")
        row: dict[str, Any] = {"name": name, "output": output, "status": status}
        if status == "ok":
            keyframes = sorted(rng.uniform(0, 600, size=5).round(3).tolist())
            (folder / output / "keyframes").mkdir(parents=True)
            os.link(image, folder / output / "keyframes" / "rank01_frame000001.jpg")
            row.update(
                target=classes[int(rng.integers(len(classes)))],
                peak_target_score=float(rng.random()),
                peak_attribution=float(rng.random() * 0.5),
                segment_share=float(rng.random() * 0.3),
                keyframe_times_s=keyframes,
                top_keyframe_image="keyframes/rank01_frame000001.jpg",
                report="report.html",
                log="log.txt",
            )
        elif status == "failed":
            row.update(error_type="DecodeError", error=f"{name}: cannot decode frame {i}")
        rows.append(row)
    return rows


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def load_ms(browser: Any, url: str) -> dict[str, float]:
    """One cold load in a fresh page: the browser's own milliseconds to its first drawn frame."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    # A selector, not wait_for_function: the page's policy refuses the eval it polls with.
    page.wait_for_selector("body[data-ready='true']", state="attached")
    drawn = page.evaluate("new Promise(r => requestAnimationFrame(() => r(performance.now())))")
    wall = (time.perf_counter() - started) * 1000
    nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
    page.close()
    if errors:
        raise RuntimeError(f"{url}: console errors: {errors[:3]}")
    return {
        "load_ms": float(drawn),
        "dom_content_loaded_ms": float(nav["domContentLoadedEventEnd"]),
        "wall_ms": wall,
    }


def interaction_ms(browser: Any, url: str, script: str) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    page.wait_for_selector("body[data-ready='true']", state="attached")
    value = float(page.evaluate(script))
    page.close()
    return value


#: Zoom the hour-long timeline to 9 s (e^-6 of it) around its middle and back with the wheel;
#: the mean time of the two redraws.
ZOOM_SCRIPT = """
(() => {
  const over = document.getElementById('tl-over');
  const box = over.getBoundingClientRect();
  const x = box.left + 132 + (box.width - 142) / 2, y = box.top + 60;
  const t0 = performance.now();
  over.dispatchEvent(new WheelEvent('wheel', {deltaY: -4000, clientX: x, clientY: y,
    bubbles: true, cancelable: true}));
  const t1 = performance.now();
  over.dispatchEvent(new WheelEvent('wheel', {deltaY: 4000, clientX: x, clientY: y,
    bubbles: true, cancelable: true}));
  return (performance.now() - t1 + (t1 - t0)) / 2;
})()
"""
SORT_SCRIPT = """
(() => {
  const t0 = performance.now();
  document.querySelector('button.vc-sort[data-key="name"]').click();
  return performance.now() - t0;
})()
"""
SEARCH_SCRIPT = """
(() => {
  const box = document.getElementById('search');
  const t0 = performance.now();
  box.value = 'camera3/clip_0';
  box.dispatchEvent(new Event('input'));
  return performance.now() - t0;
})()
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 loads per page")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)

    from playwright.sync_api import sync_playwright

    from videocam.render.report import write_batch_report, write_video_report

    if not Path(CHROMIUM).exists():
        sys.stderr.write(f"{CHROMIUM} is missing: apt-get install -y chromium\n")
        return 2
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average": os.getloadavg(),
        "repeats": repeats,
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="videocam-report-bench-") as scratch:
        root = Path(scratch)
        tables = hour_tables(HOUR_FRAMES)
        pages: dict[str, tuple[Path, str]] = {}
        for case, tracks in (("hour", None), ("hour + 3 tracks", tables["tracks"])):
            folder = root / case.replace(" ", "_").replace("+", "plus")
            folder.mkdir()
            write_media(folder, tables["keyframes"])
            started = time.perf_counter()
            page = write_video_report(
                folder / "report.html",
                frames=tables["frames"],
                keyframes=tables["keyframes"],
                segments=tables["segments"],
                summary=hour_summary(HOUR_FRAMES),
                tracks=tracks,
                name="hour.mp4",
            )
            results["cases"][case] = {"write_s": time.perf_counter() - started}
            pages[case] = (page, "video")
        folder = root / "batch"
        folder.mkdir()
        rows = batch_rows(folder, BATCH_ROWS)
        started = time.perf_counter()
        page = write_batch_report(folder / "report.html", rows, title="Batch bench", finished=True)
        results["cases"]["batch of 10,000"] = {"write_s": time.perf_counter() - started}
        pages["batch of 10,000"] = (page, "batch")

        with sync_playwright() as playwright:
            browser = launch(playwright)
            results["chromium"] = browser.version
            for case, (page, kind) in pages.items():
                url = page.as_uri()
                load_ms(browser, url)  # warm the browser's caches of its own code
                runs = [load_ms(browser, url) for _ in range(repeats)]
                entry = results["cases"][case]
                entry["bytes"] = page.stat().st_size
                entry["runs"] = runs
                entry["load_ms_median"] = statistics.median(r["load_ms"] for r in runs)
                entry["load_ms_max"] = max(r["load_ms"] for r in runs)
                if kind == "video":
                    entry["zoom_redraw_ms"] = interaction_ms(browser, url, ZOOM_SCRIPT)
                else:
                    entry["sort_ms"] = interaction_ms(browser, url, SORT_SCRIPT)
                    entry["search_ms"] = interaction_ms(browser, url, SEARCH_SCRIPT)
            browser.close()

    header = f"{'page':<18} {'size':>8} {'write':>7} {'load (median)':>14} {'max':>7}  next step"
    lines = [header, "-" * len(header)]
    for case, entry in results["cases"].items():
        step = (
            f"zoom redraw {entry['zoom_redraw_ms']:.0f} ms"
            if "zoom_redraw_ms" in entry
            else f"sort {entry['sort_ms']:.0f} ms, search {entry['search_ms']:.0f} ms"
        )
        lines.append(
            f"{case:<18} {entry['bytes'] / 1e6:>6.1f}MB {entry['write_s']:>6.2f}s "
            f"{entry['load_ms_median']:>11.0f} ms {entry['load_ms_max']:>4.0f} ms  {step}"
        )
    lines.append(
        f"Chromium {results['chromium']}, {repeats} loads each, load average before: "
        + ", ".join(f"{x:.2f}" for x in results["load_average"])
    )
    sys.stdout.write("\n".join(lines) + "\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
