/* videocam review page of one video: what the timeline's two canvases show. The base canvas
 * (VC.video.drawBase): the segments, the time axis, each lane with its scale and curve, the
 * keyframes; the overlay (VC.video.drawOverlay): the span being dragged, the pointer's time and
 * the playhead. Both read the timeline's geometry (video-timeline.js): its view, its size in
 * CSS pixels and device pixels per CSS pixel, plotW(), timeToX(t), laneY(lane, v). */
(function () {
  "use strict";
  var V = VC.video || (VC.video = {});

  var GUTTER = V.LAYOUT.gutter, AXIS = V.LAYOUT.axis, GAP = V.LAYOUT.gap;

  var FONT = "px system-ui, sans-serif";
  var COLOR = {
    segment: "rgba(250, 176, 5, 0.22)",
    axisText: "#495057",
    grid: "#dee2e6",
    laneBorder: "#ced4da",
    floor: "#495057",
    laneName: "#212529",
    scaleTick: "#adb5bd",
    scaleText: "#868e96",
    keyframe: "#5f3dc4",
    keyframeText: "#fff",
    dragFill: "rgba(28, 126, 214, 0.15)",
    dragLine: "#1c7ed6",
    pointer: "rgba(33, 37, 41, 0.45)",
    playhead: "#e03131",
  };
  /* A half pixel: a one-pixel line on a whole coordinate is drawn crisp, not over two rows. */
  var HALF = 0.5;
  /* Curves: line width, the opacity of the area under a filled one, and a dot on each frame of
   * this radius once frames are more than DOTS_FROM pixels apart (all CSS pixels). */
  var CURVE_WIDTH = 1.25, FILL_ALPHA = 0.18, DOT_RADIUS = 2.2, DOTS_FROM = 7;
  /* Time axis: a tick at least TICK_SPACING apart, its label LABEL_RISE above the lanes,
   * within LABEL_MARGIN of the canvas' ends; grid lines start GRID_RISE above the lanes and
   * segment shading SEGMENT_RISE; labels have at most MAX_DIGITS decimals of a second. */
  var TICK_SPACING = 90, LABEL_RISE = 10, LABEL_MARGIN = 2, GRID_RISE = 6, SEGMENT_RISE = 4;
  var MAX_DIGITS = 3;
  /* Steps of the time axis after one, two and five frames, in seconds (timeline.png picks
   * from the same list). */
  var TIME_STEPS_S = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
    7200];
  var FRAME_STEPS = [1, 2, 5];
  /* Lanes: the name's size and its gap to the scale (it is clipped to fit the gutter), the
   * scale's size, its ticks' length and its labels' gap to the plot; the floor's dashes. */
  var NAME_SIZE = 12, NAME_GAP = 8, NAME_CLIP = 14;
  var SCALE_SIZE = 11, SCALE_TICK = 4, SCALE_GAP = 6;
  var FLOOR_DASH = [2, 3];
  /* Keyframes: a dashed line and the rank in a disc at the top. */
  var KEY_DASH = [4, 3], KEY_RADIUS = 8, KEY_SIZE = 11, KEY_TEXT_DROP = 0.5;
  /* The playhead: its width and, above the lanes, a triangle pointing down at it. */
  var PLAYHEAD_WIDTH = 2, PLAYHEAD_RISE = 4, ARROW_HALF = 5, ARROW_TOP = 8, ARROW_TIP = 2;
  /* Slack of the comparisons of times (seconds) with the view's ends. */
  var EPS = 1e-9, DIGIT_EPS = 1e-6;

  /* One lane's curve over the view, drawn in the canvas' own (device) pixels whatever the
   * number of frames per pixel column: a line through VC.columnPath's samples (each column's
   * first, lowest, highest and last), so no peak falls between columns when frames outnumber
   * pixels, and frames wider than a pixel are joined by straight segments. A run ends holding
   * its last value until the next analysed frame (the last frame: for one frame), so a lone
   * frame between gaps still shows, and the curve reaches the end of the video. */
  function drawCurve(ctx, tl, clip, lane) {
    var times = clip.times, values = lane.curve.values, n = times.length, dpr = tl.dpr;
    var i0 = Math.max(0, VC.lowerBound(times, tl.view.a) - 1);
    var i1 = Math.min(n, VC.lowerBound(times, tl.view.b + EPS) + 1);
    function xOf(i) { return tl.timeToX(times[i]) * dpr; }
    function endOf(i) { return tl.timeToX(i + 1 < n ? times[i + 1] : times[i] + clip.frameS) * dpr; }
    function yOf(i) { return tl.laneY(lane, values[i]) * dpr; }
    var runs = VC.columnPath(values, i0, i1, xOf);
    var bottom = (lane.y + lane.height) * dpr;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.strokeStyle = lane.color;
    ctx.fillStyle = lane.color;
    ctx.lineWidth = CURVE_WIDTH * dpr;
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
        ctx.globalAlpha = FILL_ALPHA;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
      trace(run);
      ctx.stroke();
    });
    // Zoomed in to a few frames: a dot on each.
    if (tl.plotW() / Math.max(1, i1 - i0) > DOTS_FROM) {
      for (var i = i0; i < i1; i++) {
        if (Number.isNaN(values[i])) continue;
        ctx.beginPath();
        ctx.arc(xOf(i), yOf(i), DOT_RADIUS * dpr, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();
  }

  /* 0.05 -> "0.05", 0.4613 -> "0.461", 1 -> "1", 1.59 -> "1.59": three significant digits. */
  function tickLabel(v) { return String(Number(v.toPrecision(3))); }

  /* A lane's scale in the gutter: its top value at its first row, 0 at its last, with ticks. */
  function drawScale(ctx, tl, lane) {
    var left = GUTTER, yTop = tl.laneY(lane, lane.top), yZero = tl.laneY(lane, 0);
    ctx.strokeStyle = COLOR.scaleTick;
    ctx.lineWidth = 1;
    ctx.beginPath();
    [yTop, yZero].forEach(function (y) {
      ctx.moveTo(left - SCALE_TICK, Math.round(y) + HALF);
      ctx.lineTo(left, Math.round(y) + HALF);
    });
    ctx.stroke();
    ctx.fillStyle = COLOR.scaleText;
    ctx.font = SCALE_SIZE + FONT;
    ctx.textAlign = "right";
    ctx.textBaseline = "top";
    ctx.fillText(tickLabel(lane.top), left - SCALE_GAP, lane.y);
    ctx.textBaseline = "bottom";
    ctx.fillText("0", left - SCALE_GAP, lane.y + lane.height + 1);
  }

  /* The time axis' step over a span of seconds drawn px wide: the first of a few frames or
   * round times that leaves TICK_SPACING pixels between ticks. */
  function niceStep(span, px, frameS) {
    var target = span / Math.max(1, px / TICK_SPACING);
    var steps = FRAME_STEPS.map(function (k) { return k * frameS; }).concat(TIME_STEPS_S);
    for (var i = 0; i < steps.length; i++) if (steps[i] >= target) return steps[i];
    return steps[steps.length - 1];
  }

  /* As many decimals as a step needs (0.16 s: two), at most milliseconds. */
  function stepDigits(step) {
    var digits = 0;
    while (digits < MAX_DIGITS && Math.abs(step * Math.pow(10, digits) -
      Math.round(step * Math.pow(10, digits))) > DIGIT_EPS) digits++;
    return digits;
  }

  /* Segments, shaded across every lane. */
  function drawSegments(ctx, tl, clip) {
    var left = GUTTER, right = GUTTER + tl.plotW();
    ctx.fillStyle = COLOR.segment;
    clip.segments.forEach(function (s) {
      var x0 = tl.timeToX(s.start_s), x1 = tl.timeToX(s.end_s + clip.frameS);
      if (x1 < left || x0 > right) return;
      x0 = Math.max(left, x0); x1 = Math.min(right, x1);
      ctx.fillRect(x0, AXIS - SEGMENT_RISE, Math.max(1, x1 - x0),
        tl.cssH - AXIS + SEGMENT_RISE - GAP);
    });
  }

  /* The time axis: a grid line and a time at each step. */
  function drawAxis(ctx, tl, clip) {
    var view = tl.view;
    var step = niceStep(view.b - view.a, tl.plotW(), clip.frameS);
    ctx.fillStyle = COLOR.axisText;
    ctx.strokeStyle = COLOR.grid;
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    var first = Math.ceil(view.a / step - EPS) * step;
    var digits = stepDigits(step);
    for (var t = first; t <= view.b + EPS; t += step) {
      var x = tl.timeToX(t);
      ctx.beginPath();
      ctx.moveTo(x + HALF, AXIS - GRID_RISE);
      ctx.lineTo(x + HALF, tl.cssH - GAP);
      ctx.stroke();
      var label = VC.clock(t, digits), half = ctx.measureText(label).width / 2;
      // Labels at the ends stay inside the canvas.
      ctx.fillText(label, Math.max(half + LABEL_MARGIN, Math.min(tl.cssW - half - LABEL_MARGIN,
        x)), AXIS - LABEL_RISE);
    }
  }

  /* The evidence floor: frames whose score is under it are never keyframes. */
  function drawFloor(ctx, tl, lane) {
    var yl = Math.round(tl.laneY(lane, lane.level)) + HALF;
    ctx.strokeStyle = COLOR.floor;
    ctx.setLineDash(FLOOR_DASH);
    ctx.beginPath();
    ctx.moveTo(GUTTER, yl);
    ctx.lineTo(GUTTER + tl.plotW(), yl);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  /* One lane: its frame, its floor and curve clipped to it, its name and its scale. */
  function drawLane(ctx, tl, clip, lane) {
    var left = GUTTER, top = lane.y, h = lane.height;
    ctx.strokeStyle = COLOR.laneBorder;
    ctx.lineWidth = 1;
    ctx.strokeRect(left + HALF, top + HALF, tl.plotW() - 1, h - 1);
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, tl.plotW(), h);
    ctx.clip();
    if (lane.level !== null && lane.level !== undefined) drawFloor(ctx, tl, lane);
    drawCurve(ctx, tl, clip, lane);
    ctx.restore();
    // A followed class' name in its colour; the video's own lanes bold.
    var own = lane.track === undefined;
    ctx.fillStyle = own ? COLOR.laneName : lane.color;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.font = (own ? "600 " : "") + NAME_SIZE + FONT;
    ctx.fillText(clipText(ctx, lane.name, GUTTER - NAME_CLIP), GUTTER - NAME_GAP, top + h / 2);
    drawScale(ctx, tl, lane);
  }

  /* Keyframe markers, numbered by rank; the strongest drawn last, on top of any it overlaps. */
  function drawKeyframes(ctx, tl, clip) {
    var left = GUTTER, right = GUTTER + tl.plotW();
    clip.keyframes.slice().reverse().forEach(function (k) {
      var x = tl.timeToX(k.time_s);
      if (x < left - 1 || x > right + 1) return;
      ctx.strokeStyle = COLOR.keyframe;
      ctx.setLineDash(KEY_DASH);
      ctx.beginPath();
      ctx.moveTo(x + HALF, AXIS);
      ctx.lineTo(x + HALF, tl.cssH - GAP);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = COLOR.keyframe;
      ctx.beginPath();
      ctx.arc(x + HALF, AXIS + KEY_RADIUS, KEY_RADIUS, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = COLOR.keyframeText;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "bold " + KEY_SIZE + FONT;
      ctx.fillText(String(k.rank), x + HALF, AXIS + KEY_RADIUS + KEY_TEXT_DROP);
    });
  }

  /* text cut to fit width (with an ellipsis) in the context's font. */
  function clipText(ctx, text, width) {
    var s = String(text);
    if (ctx.measureText(s).width <= width) return s;
    while (s.length > 1 && ctx.measureText(s + "…").width > width) s = s.slice(0, -1);
    return s + "…";
  }

  V.drawBase = function (ctx, tl, clip) {
    ctx.setTransform(tl.dpr, 0, 0, tl.dpr, 0, 0);
    ctx.clearRect(0, 0, tl.cssW, tl.cssH);
    ctx.font = NAME_SIZE + FONT;
    drawSegments(ctx, tl, clip);
    drawAxis(ctx, tl, clip);
    tl.lanes.forEach(function (lane) { drawLane(ctx, tl, clip, lane); });
    drawKeyframes(ctx, tl, clip);
  };

  /* The span being dragged across (to zoom to it). */
  function drawDrag(ctx, tl, drag) {
    ctx.fillStyle = COLOR.dragFill;
    ctx.strokeStyle = COLOR.dragLine;
    var xa = Math.min(drag.x0, drag.x1), xb = Math.max(drag.x0, drag.x1);
    ctx.fillRect(xa, AXIS, xb - xa, tl.cssH - AXIS - GAP);
    ctx.strokeRect(xa + HALF, AXIS + HALF, xb - xa, tl.cssH - AXIS - GAP);
  }

  function drawPointer(ctx, tl, x) {
    ctx.strokeStyle = COLOR.pointer;
    ctx.beginPath();
    ctx.moveTo(x + HALF, AXIS);
    ctx.lineTo(x + HALF, tl.cssH - GAP);
    ctx.stroke();
  }

  function drawPlayhead(ctx, tl, x) {
    ctx.strokeStyle = COLOR.playhead;
    ctx.lineWidth = PLAYHEAD_WIDTH;
    ctx.beginPath();
    ctx.moveTo(x, AXIS - PLAYHEAD_RISE);
    ctx.lineTo(x, tl.cssH - GAP);
    ctx.stroke();
    ctx.fillStyle = COLOR.playhead;
    ctx.beginPath();
    ctx.moveTo(x - ARROW_HALF, AXIS - ARROW_TOP);
    ctx.lineTo(x + ARROW_HALF, AXIS - ARROW_TOP);
    ctx.lineTo(x, AXIS - ARROW_TIP);
    ctx.fill();
    ctx.lineWidth = 1;
  }

  /* The overlay at the player's time t. */
  V.drawOverlay = function (ctx, tl, t) {
    ctx.setTransform(tl.dpr, 0, 0, tl.dpr, 0, 0);
    ctx.clearRect(0, 0, tl.cssW, tl.cssH);
    if (tl.drag && tl.drag.moved) drawDrag(ctx, tl, tl.drag);
    if (tl.hoverX !== null) drawPointer(ctx, tl, tl.hoverX);
    var x = tl.timeToX(t);
    if (x >= GUTTER - 1 && x <= GUTTER + tl.plotW() + 1) drawPlayhead(ctx, tl, x);
  };
})();
