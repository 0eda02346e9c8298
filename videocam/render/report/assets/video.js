/* videocam review page of one video: the player, the interactive timeline, the keyframe
 * gallery, the segments and the summary. */
(function () {
  var D = VC.data(), el = VC.el;
  var S = D.summary || {};
  var player = document.getElementById("player");
  var times = VC.f64(D.time_s);
  var frameIndex = VC.i32(D.frame_index);
  var fps = VC.isNum(D.fps) && D.fps > 0 ? D.fps : 25;
  var frameS = 1 / fps;
  // Seeks land a little inside a frame's display interval rather than on its edge, so the
  // player shows that frame and not the one before it.
  var SEEK_IN = Math.min(1e-3, frameS / 8);
  var keyframes = (D.keyframes || []).slice();
  var keyTimes = keyframes.map(function (k) { return k.time_s; }).sort(function (a, b) {
    return a - b;
  });

  function curve(c) { return { values: VC.f32(c.values), max: c.max }; }

  /* ---- header, warnings, summary ----------------------------------------------------- */

  var target = S.target || {}, model = S.model || {}, video = S.video || {};
  VC.text("title", D.name || "video");
  VC.text("subtitle", [
    "explains " + (target.name === undefined ? "?" : target.name) +
      (target.index === undefined ? "" : " (" + target.index + ")"),
    "method " + (S.method || "?"),
    "model " + (model.name || "?"),
    D.n_frames + " frames analysed",
  ].join(" · "));

  var warnings = S.warnings || [];
  if (warnings.length) {
    var box = document.getElementById("warnings");
    box.appendChild(el("h2", { text: warnings.length === 1 ? "Warning" : warnings.length +
      " warnings" }));
    var list = el("ul");
    warnings.forEach(function (w) { list.appendChild(el("li", { text: w })); });
    box.appendChild(list);
    box.hidden = false;
  }

  /* How the model saw the video: a per-frame model one frame at a time, a video model in
   * windows of clip_len frames. */
  function windowsFact(w) {
    if (!w) return ["windows", null];
    if (model.kind === "frame" || w.clip_len === 1) {
      return ["analysed", "per frame: " + VC.plural(w.n_windows, "frames")];
    }
    return ["windows", VC.plural(w.n_windows, "windows") + " of " + w.clip_len +
      " frames, stride " + w.stride];
  }

  function section(title, node) {
    return el("section", { class: "vc-panel" }, [el("h3", { text: title }), node]);
  }
  function shape(s) { return s && s.length ? s.join("×") : null; }

  (function summaryPanel() {
    var aside = document.getElementById("summary");
    var decode = S.decode || {}, decoder = S.decoder || {};
    var top = el("ol", { class: "vc-top" });
    (target.video_top_classes || []).forEach(function (c) {
      var bar = el("span", { class: "vc-bar" });
      bar.style.width = (100 * Math.max(0, Math.min(1, c.mean_prob || 0))).toFixed(1) + "%";
      top.appendChild(el("li", { class: c.index === target.index ? "vc-target" : null }, [
        el("span", { class: "vc-top-name", text: c.name }),
        el("span", { class: "vc-top-p", text: VC.num(c.mean_prob, 3) }),
        el("span", { class: "vc-bar-track" }, [bar]),
      ]));
    });
    aside.appendChild(section("Explained class", VC.dl([
      ["target", (target.name === undefined ? "" : target.name) +
        (target.index === undefined ? "" : " (index " + target.index + ")") +
        (target.auto ? ", chosen automatically" : "")],
      ["skipped background", target.skipped_background_class],
      ["method", S.method],
      ["peak target score", VC.num(D.stats.peak_target_score)],
      ["peak attribution", VC.num(D.stats.peak_attribution)],
      ["time in segments", VC.pct(D.stats.segment_share)],
      ["top classes", top.childNodes.length ? top : null],
    ])));
    aside.appendChild(section("Model", VC.dl([
      ["name", model.name + (model.kind ? " (" + model.kind + ")" : "")],
      ["weights", model.weights],
      ["layer", model.layer],
      ["layer map", shape(model.layer_map_shape) &&
        shape(model.layer_map_shape) + (model.layer_map_shape.length === 3 ? " (t′×h×w)" : " (h×w)")],
      ["input size", shape(model.input_size)],
      ["device", model.device],
      windowsFact(S.windows),
    ])));
    var tags = D.tags || {};
    var tagList = Object.keys(tags).map(function (k) { return [k, tags[k]]; });
    aside.appendChild(section("Video", VC.dl([
      ["file", video.path],
      ["size", video.width ? video.width + "×" + video.height : null],
      ["frame rate", VC.isNum(video.fps) ? VC.num(video.fps, 3) + " fps" : null],
      ["duration", VC.clock(video.duration_s)],
      ["frames", video.n_frames],
      ["codec", video.codec],
      ["rotation", video.rotation ? video.rotation + "°" : null],
    ].concat(tagList))));
    var damaged = (decode.decode_errors || 0) + " damaged (" +
      (decode.skipped_frames || []).length + " skipped, " +
      (decode.corrupt_frames || []).length + " concealed)";
    aside.appendChild(section("Decoding", VC.dl([
      ["decoder", decoder.backend + (decoder.requested ? " (asked: " + decoder.requested + ")" : "")],
      ["why", decoder.reason],
      ["frames", damaged],
      ["size changes", (decode.size_changes || []).length || null],
    ])));
    var timings = S.timings_s || {};
    aside.appendChild(section("Timings", VC.dl(Object.keys(timings).map(function (k) {
      return [k.replace(/_s$/, ""), VC.num(timings[k], 2) + " s"];
    }))));
    var versions = S.versions || {};
    aside.appendChild(section("Versions", VC.dl(Object.keys(versions).map(function (k) {
      return [k, versions[k]];
    }))));
    var details = el("details", { class: "vc-panel" }, [
      el("summary", { text: "Options (config)" }),
      el("pre", { text: JSON.stringify(S.config || {}, null, 1) }),
    ]);
    aside.appendChild(details);
  })();

  /* ---- the player ---------------------------------------------------------------------- */

  var duration = Math.max(D.end_s + frameS, VC.isNum(video.duration_s) ? video.duration_s : 0);
  VC.setLink(player, "src", D.video);
  player.addEventListener("error", function () {
    var box = document.getElementById("player-error");
    box.textContent = "The browser cannot play " + D.video + " (it needs H.264 in MP4). " +
      "The timeline, keyframes and tables still work.";
    box.hidden = false;
  });

  function clampTime(t) { return Math.max(0, Math.min(duration - SEEK_IN, t)); }
  function seek(t) {
    var to = clampTime(t) + SEEK_IN;
    player.currentTime = to;
    follow(to, true);
    drawOverlay();
  }
  function now() { return player.currentTime || 0; }

  /* The analysed frame at time t: the last one at or before it. */
  function frameAt(t) {
    var i = VC.lowerBound(times, t + 1e-9);
    return Math.max(0, Math.min(times.length - 1, i - 1));
  }

  /* ---- the timeline ---------------------------------------------------------------------- */

  var tl = document.getElementById("timeline");
  var base = document.getElementById("tl-base"), over = document.getElementById("tl-over");
  var tip = document.getElementById("tl-tip");
  var GUTTER = 132, AXIS = 26, GAP = 10, RIGHT = 10;
  // Each lane's scale, 0 to top: attribution to the video's highest; the target score to the
  // round value above its peak that timeline.png uses too (computed by the page's writer:
  // 0.05 for an ImageNet class that peaks at 0.043, 1 for a confident one, more for an object
  // detector's detection mass), with the evidence floor dotted; the tracks on one shared scale.
  function positive(x, fallback) { return VC.isNum(x) && x > 0 ? x : fallback; }
  var lanes = [
    { name: "attribution", curve: curve(D.attribution), color: "#d9480f", fill: true,
      height: 78, marks: true },
    { name: "target score", curve: curve(D.target_score), color: "#1c7ed6", height: 52,
      top: positive(D.score_top, Math.max(1, D.target_score.max || 0)),
      level: VC.isNum(D.evidence_level) ? D.evidence_level : null },
  ];
  lanes[0].top = positive(lanes[0].curve.max, 1);
  var palette = ["#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d", "#364fc7"];
  var trackMax = 0;
  (D.tracks || []).forEach(function (t) { trackMax = Math.max(trackMax, t.attribution.max); });
  (D.tracks || []).forEach(function (t, i) {
    lanes.push({ name: t.class_name, curve: curve(t.attribution), color:
      palette[i % palette.length], fill: true, height: 40, top: positive(trackMax, 1),
      track: t.class_index });
  });
  var full = { a: 0, b: duration };
  var view = { a: full.a, b: full.b };
  var minSpan = Math.max(8 * frameS, 1e-3);
  var dpr = 1, cssW = 0, cssH = 0;

  function layout() {
    var y = AXIS;
    lanes.forEach(function (lane) { lane.y = y; y += lane.height + GAP; });
    cssH = y;
    cssW = Math.max(320, tl.clientWidth);
    dpr = window.devicePixelRatio || 1;
    [base, over].forEach(function (c) {
      c.width = Math.round(cssW * dpr);
      c.height = Math.round(cssH * dpr);
      c.style.width = cssW + "px";
      c.style.height = cssH + "px";
    });
    tl.style.height = cssH + "px";
    publish();
  }
  function plotW() { return cssW - GUTTER - RIGHT; }
  function timeToX(t) { return GUTTER + (t - view.a) / (view.b - view.a) * plotW(); }
  function xToTime(x) { return view.a + (x - GUTTER) / plotW() * (view.b - view.a); }

  /* What a test (or a curious reader) needs to map times to pixels. */
  function publish() {
    tl.setAttribute("data-view-start", String(view.a));
    tl.setAttribute("data-view-end", String(view.b));
    tl.setAttribute("data-plot-left", String(GUTTER));
    tl.setAttribute("data-plot-width", String(plotW()));
    tl.setAttribute("data-lanes", JSON.stringify(lanes.map(function (l) { return l.name; })));
    tl.setAttribute("data-lane-boxes", JSON.stringify(lanes.map(function (l) {
      return { y: l.y, height: l.height, top: l.top, level: l.level === undefined ? null : l.level };
    })));
    VC.text("view-range", view.a <= full.a && view.b >= full.b ? "whole video, " +
      VC.clock(full.b - full.a) : VC.clock(view.a) + " – " + VC.clock(view.b) + " (" +
      VC.clock(view.b - view.a, 3) + ")");
  }

  function setView(a, b) {
    var span = Math.max(minSpan, Math.min(full.b - full.a, b - a));
    if (a < full.a) a = full.a;
    if (a + span > full.b) a = full.b - span;
    view.a = Math.max(full.a, a);
    view.b = view.a + span;
    publish();
    drawBase();
    drawOverlay();
    // The time under a resting pointer changed with the view: so does what the tooltip says.
    if (hoverX !== null && !tip.hidden) tooltip(hoverX, tipY);
  }
  function zoom(factor, around) {
    var t = around === undefined ? (view.a + view.b) / 2 : around;
    // Clamped here, not only in setView, so that the time under the cursor stays put.
    var span = Math.max(minSpan, Math.min(full.b - full.a, (view.b - view.a) * factor));
    var frac = (t - view.a) / (view.b - view.a);
    setView(t - frac * span, t - frac * span + span);
  }
  /* Keep the playhead in sight while zoomed in. */
  function follow(t, centre) {
    if (t >= view.a && t <= view.b) return;
    var span = view.b - view.a;
    setView(centre ? t - span / 2 : t - span * 0.1, (centre ? t - span / 2 : t - span * 0.1) + span);
  }

  function niceStep(span, px) {
    var target = span / Math.max(1, px / 90);
    var steps = [frameS, 2 * frameS, 5 * frameS, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120,
      300, 600, 900, 1800, 3600, 7200];
    for (var i = 0; i < steps.length; i++) if (steps[i] >= target) return steps[i];
    return steps[steps.length - 1];
  }

  /* A lane's value v as a y in CSS pixels: 0 on its bottom row, its top on its first. */
  function laneY(lane, v) { return lane.y + lane.height - 1 - v / lane.top * (lane.height - 2); }

  /* One lane's curve over the view, drawn in the canvas' own (device) pixels whatever the
   * number of frames per pixel column: a line through VC.columnPath's samples (each column's
   * first, lowest, highest and last), so no peak falls between columns when frames outnumber
   * pixels, and frames wider than a pixel are joined by straight segments. A run ends holding
   * its last value until the next analysed frame (the last frame: for one frame), so a lone
   * frame between gaps still shows, and the curve reaches the end of the video. */
  function drawCurve(ctx, lane) {
    var values = lane.curve.values, n = times.length;
    var i0 = Math.max(0, VC.lowerBound(times, view.a) - 1);
    var i1 = Math.min(n, VC.lowerBound(times, view.b + 1e-9) + 1);
    function xOf(i) { return timeToX(times[i]) * dpr; }
    function endOf(i) { return timeToX(i + 1 < n ? times[i + 1] : times[i] + frameS) * dpr; }
    function yOf(i) { return laneY(lane, values[i]) * dpr; }
    var runs = VC.columnPath(values, i0, i1, xOf);
    var bottom = (lane.y + lane.height) * dpr;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.strokeStyle = lane.color;
    ctx.fillStyle = lane.color;
    ctx.lineWidth = 1.25 * dpr;
    ctx.lineJoin = "round";
    function trace(run) {
      ctx.beginPath();
      ctx.moveTo(xOf(run[0]), yOf(run[0]));
      for (var k = 1; k < run.length; k++) ctx.lineTo(xOf(run[k]), yOf(run[k]));
      ctx.lineTo(endOf(run[run.length - 1]), yOf(run[run.length - 1]));
    }
    runs.forEach(function (run) {
      if (lane.fill) {  // a faint area down to 0 under the line
        trace(run);
        ctx.lineTo(endOf(run[run.length - 1]), bottom);
        ctx.lineTo(xOf(run[0]), bottom);
        ctx.closePath();
        ctx.globalAlpha = 0.18;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
      trace(run);
      ctx.stroke();
    });
    // Zoomed in to a few frames: a dot on each.
    if (plotW() / Math.max(1, i1 - i0) > 7) {
      for (var i = i0; i < i1; i++) {
        if (values[i] !== values[i]) continue;
        ctx.beginPath();
        ctx.arc(xOf(i), yOf(i), 2.2 * dpr, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();
  }

  /* A lane's scale in the gutter: its top value at its first row, 0 at its last, with ticks. */
  function drawScale(ctx, lane) {
    var left = GUTTER, yTop = laneY(lane, lane.top), yZero = laneY(lane, 0);
    ctx.strokeStyle = "#adb5bd";
    ctx.lineWidth = 1;
    ctx.beginPath();
    [yTop, yZero].forEach(function (y) {
      ctx.moveTo(left - 4, Math.round(y) + 0.5);
      ctx.lineTo(left, Math.round(y) + 0.5);
    });
    ctx.stroke();
    ctx.fillStyle = "#868e96";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "top";
    ctx.fillText(tickLabel(lane.top), left - 6, lane.y);
    ctx.textBaseline = "bottom";
    ctx.fillText("0", left - 6, lane.y + lane.height + 1);
  }

  /* 0.05 -> "0.05", 0.4613 -> "0.461", 1 -> "1", 1.59 -> "1.59": three significant digits. */
  function tickLabel(v) { return String(Number(v.toPrecision(3))); }

  function drawBase() {
    var ctx = base.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.font = "12px system-ui, sans-serif";
    var left = GUTTER, right = GUTTER + plotW();
    // Segments, shaded across every lane.
    ctx.fillStyle = "rgba(250, 176, 5, 0.22)";
    (D.segments || []).forEach(function (s) {
      var x0 = timeToX(s.start_s), x1 = timeToX(s.end_s + frameS);
      if (x1 < left || x0 > right) return;
      x0 = Math.max(left, x0); x1 = Math.min(right, x1);
      ctx.fillRect(x0, AXIS - 4, Math.max(1, x1 - x0), cssH - AXIS + 4 - GAP);
    });
    // Time axis.
    var step = niceStep(view.b - view.a, plotW());
    ctx.fillStyle = "#495057";
    ctx.strokeStyle = "#dee2e6";
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    var first = Math.ceil(view.a / step - 1e-9) * step;
    // As many decimals as the step needs (0.16 s: two), at most milliseconds.
    var digits = 0;
    while (digits < 3 && Math.abs(step * Math.pow(10, digits) -
      Math.round(step * Math.pow(10, digits))) > 1e-6) digits++;
    for (var t = first; t <= view.b + 1e-9; t += step) {
      var x = timeToX(t);
      ctx.beginPath();
      ctx.moveTo(x + 0.5, AXIS - 6);
      ctx.lineTo(x + 0.5, cssH - GAP);
      ctx.stroke();
      var label = VC.clock(t, digits), half = ctx.measureText(label).width / 2;
      // Labels at the ends stay inside the canvas.
      ctx.fillText(label, Math.max(half + 2, Math.min(cssW - half - 2, x)), AXIS - 10);
    }
    // Lanes.
    lanes.forEach(function (lane) {
      var top = lane.y, h = lane.height;
      ctx.strokeStyle = "#ced4da";
      ctx.lineWidth = 1;
      ctx.strokeRect(left + 0.5, top + 0.5, plotW() - 1, h - 1);
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, plotW(), h);
      ctx.clip();
      if (lane.level !== null && lane.level !== undefined) {
        // The evidence floor: frames whose score is under it are never keyframes.
        var yl = Math.round(laneY(lane, lane.level)) + 0.5;
        ctx.strokeStyle = "#495057";
        ctx.setLineDash([2, 3]);
        ctx.beginPath();
        ctx.moveTo(left, yl);
        ctx.lineTo(left + plotW(), yl);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      drawCurve(ctx, lane);
      ctx.restore();
      ctx.fillStyle = lane.track === undefined ? "#212529" : lane.color;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.font = (lane.track === undefined ? "600 " : "") + "12px system-ui, sans-serif";
      ctx.fillText(clip(ctx, lane.name, GUTTER - 14), GUTTER - 8, top + h / 2);
      drawScale(ctx, lane);
    });
    // Keyframe markers, numbered by rank; the strongest drawn last, on top of any it overlaps.
    keyframes.slice().reverse().forEach(function (k) {
      var x = timeToX(k.time_s);
      if (x < left - 1 || x > right + 1) return;
      ctx.strokeStyle = "#5f3dc4";
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(x + 0.5, AXIS);
      ctx.lineTo(x + 0.5, cssH - GAP);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#5f3dc4";
      ctx.beginPath();
      ctx.arc(x + 0.5, AXIS + 8, 8, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "bold 11px system-ui, sans-serif";
      ctx.fillText(String(k.rank), x + 0.5, AXIS + 8.5);
    });
  }

  function clip(ctx, text, width) {
    text = String(text);
    if (ctx.measureText(text).width <= width) return text;
    while (text.length > 1 && ctx.measureText(text + "…").width > width) text = text.slice(0, -1);
    return text + "…";
  }

  var hoverX = null, tipY = 0, drag = null;
  function drawOverlay() {
    var ctx = over.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    if (drag && drag.moved) {
      ctx.fillStyle = "rgba(28, 126, 214, 0.15)";
      ctx.strokeStyle = "#1c7ed6";
      var xa = Math.min(drag.x0, drag.x1), xb = Math.max(drag.x0, drag.x1);
      ctx.fillRect(xa, AXIS, xb - xa, cssH - AXIS - GAP);
      ctx.strokeRect(xa + 0.5, AXIS + 0.5, xb - xa, cssH - AXIS - GAP);
    }
    if (hoverX !== null) {
      ctx.strokeStyle = "rgba(33, 37, 41, 0.45)";
      ctx.beginPath();
      ctx.moveTo(hoverX + 0.5, AXIS);
      ctx.lineTo(hoverX + 0.5, cssH - GAP);
      ctx.stroke();
    }
    var t = now(), x = timeToX(t);
    if (x >= GUTTER - 1 && x <= GUTTER + plotW() + 1) {
      ctx.strokeStyle = "#e03131";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x, AXIS - 4);
      ctx.lineTo(x, cssH - GAP);
      ctx.stroke();
      ctx.fillStyle = "#e03131";
      ctx.beginPath();
      ctx.moveTo(x - 5, AXIS - 8);
      ctx.lineTo(x + 5, AXIS - 8);
      ctx.lineTo(x, AXIS - 2);
      ctx.fill();
      ctx.lineWidth = 1;
    }
    readout(t);
  }

  function readout(t) {
    var i = frameAt(t);
    var k = keyframes.filter(function (kf) { return Math.abs(kf.time_s - t) < frameS / 2 + SEEK_IN; })[0];
    var parts = [VC.clock(t, 3), "frame " + (times.length ? frameIndex[i] : "–"),
      "attribution " + VC.num(lanes[0].curve.values[i]),
      "target score " + VC.num(lanes[1].curve.values[i])];
    if (k) parts.push("keyframe " + k.rank);
    VC.text("readout", parts.join(" · "));
    document.querySelectorAll(".vc-kf").forEach(function (card) {
      if (k && card.getAttribute("data-rank") === String(k.rank)) card.setAttribute("aria-current", "true");
      else card.removeAttribute("aria-current");
    });
  }

  function localX(event) { return event.clientX - over.getBoundingClientRect().left; }
  over.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    var x = localX(event);
    if (x < GUTTER) return;
    drag = { x0: x, x1: x, moved: false };
    over.setPointerCapture(event.pointerId);
  });
  over.addEventListener("pointermove", function (event) {
    var x = localX(event);
    if (drag) {
      drag.x1 = Math.max(GUTTER, Math.min(GUTTER + plotW(), x));
      if (Math.abs(drag.x1 - drag.x0) > 4) drag.moved = true;
    }
    hoverX = x >= GUTTER && x <= GUTTER + plotW() ? x : null;
    tipY = event.clientY - tl.getBoundingClientRect().top;
    tooltip(hoverX, tipY);
    drawOverlay();
  });
  over.addEventListener("pointerleave", function () {
    hoverX = null;
    tip.hidden = true;
    drawOverlay();
  });
  over.addEventListener("pointerup", function (event) {
    if (!drag) return;
    var d = drag;
    drag = null;
    if (d.moved) {
      var a = xToTime(Math.min(d.x0, d.x1)), b = xToTime(Math.max(d.x0, d.x1));
      setView(a, b);
    } else {
      var t = xToTime(localX(event));
      player.currentTime = clampTime(t);
      drawOverlay();
    }
  });
  over.addEventListener("wheel", function (event) {
    event.preventDefault();
    var dx = event.deltaX, dy = event.deltaY;
    if (event.shiftKey && !dx) { dx = dy; dy = 0; }
    if (Math.abs(dx) > Math.abs(dy)) {
      var shift = dx / plotW() * (view.b - view.a);
      setView(view.a + shift, view.b + shift);
    } else {
      var x = localX(event);
      zoom(Math.exp(dy * 0.0015), x >= GUTTER ? xToTime(x) : undefined);
    }
  }, { passive: false });

  /* The tooltip at x (CSS pixels from the timeline's left), y from its top. */
  function tooltip(x, y) {
    if (x === null) { tip.hidden = true; return; }
    var t = xToTime(x), i = frameAt(t);
    tip.textContent = VC.clock(t, 3) + " · frame " + frameIndex[i] + "\nattribution " +
      VC.num(lanes[0].curve.values[i]) + " · score " + VC.num(lanes[1].curve.values[i]);
    tip.hidden = false;
    var left = x + 14;
    if (left + 220 > cssW) left = x - 230;
    tip.style.left = left + "px";
    tip.style.top = Math.max(0, y - 40) + "px";
    tip.setAttribute("data-time", String(t));
  }

  document.getElementById("zoom-in").addEventListener("click", function () { zoom(0.5, now()); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(2, now()); });
  document.getElementById("zoom-fit").addEventListener("click", function () {
    setView(full.a, full.b);
  });

  /* ---- keyframes and segments ---------------------------------------------------------- */

  (function gallery() {
    var box = document.getElementById("gallery");
    if (!keyframes.length) {
      box.appendChild(el("p", { class: "vc-muted", text: "No keyframes: no frame's attribution" +
        " reached the floor." }));
      return;
    }
    keyframes.forEach(function (k) {
      var img = k.image ? el("img", { src: k.image, alt: "keyframe " + k.rank, loading: "lazy" })
        : el("div", { class: "vc-noimg", text: "no image" });
      var card = el("button", { type: "button", class: "vc-kf", "data-rank": k.rank,
        "data-time": k.time_s, title: "Seek to " + VC.clock(k.time_s, 3) }, [
        img,
        el("span", { class: "vc-kf-rank", text: "#" + k.rank }),
        el("span", { class: "vc-kf-time", text: VC.clock(k.time_s) + " · frame " +
          k.frame_index }),
        el("span", { class: "vc-kf-nums", text: "attribution " + VC.num(k.attribution) +
          " · score " + VC.num(k.target_score) }),
      ]);
      card.addEventListener("click", function () { seek(k.time_s); });
      box.appendChild(card);
    });
  })();

  (function segmentsTable() {
    var table = document.getElementById("segments");
    var rows = (D.segments || []).map(function (s, i) {
      return Object.assign({ n: i + 1, duration: s.end_s - s.start_s + frameS }, s);
    });
    if (!rows.length) {
      table.replaceWith(el("p", { class: "vc-muted", text: "No segments: attribution never " +
        "stands out from its median." }));
      return;
    }
    function seekButton(t, label) {
      var b = el("button", { type: "button", class: "vc-link", text: label });
      b.addEventListener("click", function () { seek(t); });
      return b;
    }
    new VC.Table({
      table: table, rows: rows, noun: "segments", sortKey: "start_s",
      columns: [
        { key: "n", label: "#", num: true },
        { key: "start_s", label: "start", num: true, cell: function (r) {
          return seekButton(r.start_s, VC.clock(r.start_s, 3)); } },
        { key: "end_s", label: "end", num: true, cell: function (r) {
          return VC.clock(r.end_s, 3); } },
        { key: "duration", label: "duration", num: true, cell: function (r) {
          return VC.clock(r.duration, 2); } },
        { key: "peak_s", label: "peak", num: true, cell: function (r) {
          return VC.isNum(r.peak_s) ? seekButton(r.peak_s, VC.clock(r.peak_s, 3) +
            " (frame " + r.peak_frame + ")") : "–"; } },
        { key: "attribution", label: "mean attribution", num: true, cell: function (r) {
          return VC.num(r.attribution); } },
      ],
    });
  })();

  /* ---- keys ------------------------------------------------------------------------------ */

  function togglePlay() {
    if (!player.paused) { player.pause(); return; }
    // play() is a promise that a pause before it starts rejects: that is no error.
    var started = player.play();
    if (started && started.catch) started.catch(function () {});
  }
  function stepFrame(d) {
    player.pause();
    var k = Math.round((now() - SEEK_IN) * fps);
    seek((k + d) / fps);
  }
  function jumpKeyframe(d) {
    var t = now(), target = null;
    if (d > 0) target = keyTimes.filter(function (k) { return k > t + frameS / 2; })[0];
    else target = keyTimes.filter(function (k) { return k < t - frameS / 2; }).pop();
    if (target !== undefined && target !== null) seek(target);
  }
  var keys = {
    " ": togglePlay, k: togglePlay,
    ArrowRight: function () { stepFrame(1); }, ".": function () { stepFrame(1); },
    ArrowLeft: function () { stepFrame(-1); }, ",": function () { stepFrame(-1); },
    "S-ArrowRight": function () { seek(now() + 1); },
    "S-ArrowLeft": function () { seek(now() - 1); },
    n: function () { jumpKeyframe(1); }, p: function () { jumpKeyframe(-1); },
    Home: function () { seek(0); }, End: function () { seek(duration); },
    "+": function () { zoom(0.5, now()); }, "=": function () { zoom(0.5, now()); },
    "-": function () { zoom(2, now()); }, "0": function () { setView(full.a, full.b); },
  };
  window.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) return;
    var name = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (event.shiftKey && (name === "ArrowRight" || name === "ArrowLeft")) name = "S-" + name;
    var action = keys[name];
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    action();
  }, true);
  // Space toggles playback even on a focused button (a keyframe card just clicked): the
  // button's own activation on key-up is cancelled.
  window.addEventListener("keyup", function (event) {
    if (event.key === " " && event.target && event.target.tagName === "BUTTON") {
      event.preventDefault();
    }
  }, true);

  /* ---- #t=SECONDS -------------------------------------------------------------------------- */

  function hashTime() {
    var m = /(?:^#|&)t=([0-9]+(?:\.[0-9]*)?)/.exec(location.hash);
    return m ? parseFloat(m[1]) : null;
  }
  function fromHash() {
    var t = hashTime();
    if (t === null) return;
    if (player.readyState >= 1) seek(t);
    else player.addEventListener("loadedmetadata", function once() {
      player.removeEventListener("loadedmetadata", once);
      seek(t);
    });
    follow(t, true);
  }
  window.addEventListener("hashchange", fromHash);
  player.addEventListener("pause", function () {
    try {
      history.replaceState(null, "", "#t=" + now().toFixed(3));
    } catch (e) { /* some browsers refuse it on file:// pages: the link simply stays */ }
  });

  /* ---- playback ----------------------------------------------------------------------------- */

  var raf = null;
  function tick() {
    follow(now(), false);
    drawOverlay();
    raf = player.paused ? null : requestAnimationFrame(tick);
  }
  player.addEventListener("play", function () { if (raf === null) raf = requestAnimationFrame(tick); });
  ["seeked", "timeupdate", "loadedmetadata"].forEach(function (name) {
    player.addEventListener(name, function () { follow(now(), true); drawOverlay(); });
  });
  window.addEventListener("resize", function () { layout(); drawBase(); drawOverlay(); });

  layout();
  drawBase();
  drawOverlay();
  fromHash();
  document.body.setAttribute("data-ready", "true");
})();
