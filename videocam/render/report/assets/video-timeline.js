/* videocam review page of one video: the timeline (VC.video.Timeline): its view (the span of
 * time it shows), its size, the mapping between times and x, zoom, the tooltip, and the calls
 * that redraw its two canvases (video-draw.js draws them). video-pointer.js moves it with the
 * mouse, video-controls.js with the keys and buttons. */
(function () {
  "use strict";
  var V = VC.video || (VC.video = {});

  /* The narrowest view: eight frames, or a millisecond. */
  var MIN_SPAN_FRAMES = 8, MIN_SPAN_S = 1e-3;
  /* Following the playhead out of the view, it lands this share of the view from the left. */
  var FOLLOW_LEAD = 0.1;
  /* The tooltip: OFFSET right of the pointer, or left of it when WIDTH would not fit, and
   * RISE above it (CSS pixels); times with TIME_DIGITS decimals. */
  var TIP_OFFSET = 14, TIP_WIDTH = 220, TIP_FLIP = 230, TIP_RISE = 40, TIME_DIGITS = 3;

  /* The timeline of opts.clip (VC.video.clip) with opts.lanes (VC.video.lanes). opts.now() is
   * the player's time; opts.onOverlay(t) runs after each overlay drawn at t. Its state: the
   * view {a, b} and the whole video, full; its size (cssW, cssH; dpr device pixels to a CSS
   * pixel); the pointer's x (hoverX, null when it is away) and y, and a drag across it. */
  function Timeline(opts) {
    var L = V.LAYOUT;
    this.opts = opts;
    this.clip = opts.clip;
    this.lanes = opts.lanes;
    this.element = document.getElementById("timeline");
    this.base = document.getElementById("tl-base");
    this.overlay = document.getElementById("tl-over");
    this.tip = document.getElementById("tl-tip");
    this.full = { a: 0, b: opts.clip.duration };
    this.view = { a: this.full.a, b: this.full.b };
    this.minSpan = Math.max(MIN_SPAN_FRAMES * opts.clip.frameS, MIN_SPAN_S);
    this.gutter = L.gutter;
    this.dpr = 1;
    this.cssW = 0;
    this.cssH = 0;
    this.hoverX = null;
    this.tipY = 0;
    this.drag = null;
  }
  var T = Timeline.prototype;

  T.plotW = function () { return this.cssW - this.gutter - V.LAYOUT.right; };
  T.timeToX = function (t) {
    return this.gutter + (t - this.view.a) / (this.view.b - this.view.a) * this.plotW();
  };
  T.xToTime = function (x) {
    return this.view.a + (x - this.gutter) / this.plotW() * (this.view.b - this.view.a);
  };
  /* A lane's value v as a y in CSS pixels: 0 on its bottom row, its top on its first. */
  T.laneY = function (lane, v) {
    return lane.y + lane.height - 1 - v / lane.top * (lane.height - 2);
  };
  T.inPlot = function (x) { return x >= this.gutter && x <= this.gutter + this.plotW(); };

  T.layout = function () {
    var L = V.LAYOUT, y = L.axis, self = this;
    this.lanes.forEach(function (lane) { lane.y = y; y += lane.height + L.gap; });
    this.cssH = y;
    this.cssW = Math.max(L.minWidth, this.element.clientWidth);
    this.dpr = window.devicePixelRatio || 1;
    [this.base, this.overlay].forEach(function (c) {
      c.width = Math.round(self.cssW * self.dpr);
      c.height = Math.round(self.cssH * self.dpr);
      c.style.width = self.cssW + "px";
      c.style.height = self.cssH + "px";
    });
    this.element.style.height = this.cssH + "px";
    this.publish();
  };

  /* What a test (or a curious reader) needs to map times to pixels. */
  T.publish = function () {
    var box = this.element, view = this.view, full = this.full;
    box.setAttribute("data-view-start", String(view.a));
    box.setAttribute("data-view-end", String(view.b));
    box.setAttribute("data-plot-left", String(this.gutter));
    box.setAttribute("data-plot-width", String(this.plotW()));
    box.setAttribute("data-lanes", JSON.stringify(this.lanes.map(function (l) { return l.name; })));
    box.setAttribute("data-lane-boxes", JSON.stringify(this.lanes.map(function (l) {
      return { y: l.y, height: l.height, top: l.top, level: l.level === undefined ? null : l.level };
    })));
    VC.text("view-range", view.a <= full.a && view.b >= full.b ? "whole video, " +
      VC.clock(full.b - full.a) : VC.clock(view.a) + " – " + VC.clock(view.b) + " (" +
      VC.clock(view.b - view.a, TIME_DIGITS) + ")");
  };

  T.drawBase = function () { V.drawBase(this.base.getContext("2d"), this, this.clip); };
  T.drawOverlay = function () {
    var t = this.opts.now();
    V.drawOverlay(this.overlay.getContext("2d"), this, t);
    this.opts.onOverlay(t);
  };
  T.redraw = function () {
    this.layout();
    this.drawBase();
    this.drawOverlay();
  };

  T.setView = function (a, b) {
    var full = this.full;
    var span = Math.max(this.minSpan, Math.min(full.b - full.a, b - a));
    if (a < full.a) a = full.a;
    if (a + span > full.b) a = full.b - span;
    this.view.a = Math.max(full.a, a);
    this.view.b = this.view.a + span;
    this.publish();
    this.drawBase();
    this.drawOverlay();
    // The time under a resting pointer changed with the view: so does what the tooltip says.
    if (this.hoverX !== null && !this.tip.hidden) this.tooltip(this.hoverX, this.tipY);
  };
  T.showAll = function () { this.setView(this.full.a, this.full.b); };
  /* The view factor times as long, the time `around` (default: the middle) where it was. */
  T.zoom = function (factor, around) {
    var view = this.view, full = this.full;
    var t = around === undefined ? (view.a + view.b) / 2 : around;
    // Clamped here, not only in setView, so that the time under the cursor stays put.
    var span = Math.max(this.minSpan, Math.min(full.b - full.a, (view.b - view.a) * factor));
    var frac = (t - view.a) / (view.b - view.a);
    this.setView(t - frac * span, t - frac * span + span);
  };
  /* Keep the playhead in sight while zoomed in: centred, or a little from the left. */
  T.follow = function (t, centre) {
    if (t >= this.view.a && t <= this.view.b) return;
    var span = this.view.b - this.view.a;
    var a = centre ? t - span / 2 : t - span * FOLLOW_LEAD;
    this.setView(a, a + span);
  };

  /* The tooltip at x (CSS pixels from the timeline's left), y from its top; none at null. */
  T.tooltip = function (x, y) {
    var tip = this.tip;
    if (x === null) { tip.hidden = true; return; }
    var t = this.xToTime(x), i = this.clip.frameAt(t), lanes = this.lanes;
    tip.textContent = VC.clock(t, TIME_DIGITS) + " · frame " + this.clip.frameIndex[i] +
      "\nattribution " + VC.num(lanes[0].curve.values[i]) + " · score " +
      VC.num(lanes[1].curve.values[i]);
    tip.hidden = false;
    var left = x + TIP_OFFSET;
    if (left + TIP_WIDTH > this.cssW) left = x - TIP_FLIP;
    tip.style.left = left + "px";
    tip.style.top = Math.max(0, y - TIP_RISE) + "px";
    tip.setAttribute("data-time", String(t));
  };
  T.hideTooltip = function () { this.tip.hidden = true; };

  V.Timeline = Timeline;
})();
