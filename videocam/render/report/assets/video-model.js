/* videocam review page of one video: the analysed frames in time (VC.video.clip), the lanes
 * of the timeline with their curves, colours, heights and scales (VC.video.lanes) and its
 * margins (VC.video.LAYOUT). The first of the page's video-*.js files. */
(function () {
  "use strict";
  var V = VC.video || (VC.video = {});

  /* The frame rate assumed when the summary has none. */
  var DEFAULT_FPS = 25;
  /* Seeks land a little inside a frame's display interval rather than on its edge, so the
   * player shows that frame and not the one before it: an eighth of a frame, at most 1 ms. */
  var SEEK_IN_MAX_S = 1e-3, SEEK_IN_PER_FRAME = 8;
  /* Half of the rounding slack of a time compared with the analysed frames' times. */
  var TIME_EPS_S = 1e-9;

  /* The times of the page's data: the analysed frames (times, source frame indices), the
   * frame rate, keyframes and segments, and the length of the video. */
  V.clip = function (D) {
    var video = (D.summary || {}).video || {};
    var fps = VC.isNum(D.fps) && D.fps > 0 ? D.fps : DEFAULT_FPS;
    var frameS = 1 / fps;
    var keyframes = (D.keyframes || []).slice();
    var clip = {
      times: VC.f64(D.time_s),
      frameIndex: VC.i32(D.frame_index),
      fps: fps,
      frameS: frameS,
      seekIn: Math.min(SEEK_IN_MAX_S, frameS / SEEK_IN_PER_FRAME),
      keyframes: keyframes,
      keyTimes: keyframes.map(function (k) { return k.time_s; }).sort(function (a, b) {
        return a - b;
      }),
      segments: D.segments || [],
      duration: Math.max(D.end_s + frameS, VC.isNum(video.duration_s) ? video.duration_s : 0),
    };
    clip.clampTime = function (t) { return Math.max(0, Math.min(clip.duration - clip.seekIn, t)); };
    /* The analysed frame at time t: the last one at or before it. */
    clip.frameAt = function (t) {
      var i = VC.lowerBound(clip.times, t + TIME_EPS_S);
      return Math.max(0, Math.min(clip.times.length - 1, i - 1));
    };
    return clip;
  };

  /* The timeline's margins, in CSS pixels: the gutter on the left holds the lanes' names and
   * scales; the time axis is above the lanes; a gap under each lane; a margin on the right; the
   * narrowest the timeline gets. */
  V.LAYOUT = { gutter: 132, axis: 26, gap: 10, right: 10, minWidth: 320 };

  /* The lanes, top to bottom: the attribution, the target score, then one per followed class. */
  var LANE_ATTRIBUTION = { color: "#d9480f", height: 78 };
  var LANE_SCORE = { color: "#1c7ed6", height: 52 };
  var LANE_TRACK = { height: 40 };
  var TRACK_PALETTE = ["#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d", "#364fc7"];

  function curve(c) { return { values: VC.f32(c.values), max: c.max }; }
  function positive(x, fallback) { return VC.isNum(x) && x > 0 ? x : fallback; }

  /* Each lane's scale, 0 to top: attribution to the video's highest; the target score to the
   * round value above its peak that timeline.png uses too (computed by the page's writer:
   * 0.05 for an ImageNet class that peaks at 0.043, 1 for a confident one, more for an object
   * detector's detection mass), with the evidence floor dotted; the tracks on one shared scale.
   * A lane: name, curve {values, max}, color, height (CSS pixels), top, and as it applies fill
   * (a faint area under the line), marks, level (the dotted floor), track (its class index). */
  V.lanes = function (D) {
    var lanes = [
      { name: "attribution", curve: curve(D.attribution), color: LANE_ATTRIBUTION.color,
        fill: true, height: LANE_ATTRIBUTION.height, marks: true },
      { name: "target score", curve: curve(D.target_score), color: LANE_SCORE.color,
        height: LANE_SCORE.height,
        top: positive(D.score_top, Math.max(1, D.target_score.max || 0)),
        level: VC.isNum(D.evidence_level) ? D.evidence_level : null },
    ];
    lanes[0].top = positive(lanes[0].curve.max, 1);
    var tracks = D.tracks || [];
    var trackMax = 0;
    tracks.forEach(function (t) { trackMax = Math.max(trackMax, t.attribution.max); });
    tracks.forEach(function (t, i) {
      lanes.push({ name: t.class_name, curve: curve(t.attribution),
        color: TRACK_PALETTE[i % TRACK_PALETTE.length], fill: true, height: LANE_TRACK.height,
        top: positive(trackMax, 1), track: t.class_index });
    });
    return lanes;
  };
})();
