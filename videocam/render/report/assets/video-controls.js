/* videocam review page of one video: the keys and the zoom buttons (VC.video.controls), as the
 * page's "Keys" list tells them. */
(function () {
  "use strict";
  var V = VC.video || (VC.video = {});

  /* Zooming in halves the view's length, zooming out doubles it. */
  var ZOOM_IN = 0.5, ZOOM_OUT = 2;
  /* Shift+arrow moves this many seconds. */
  var SKIP_S = 1;
  /* Keys that stay with the control that has the focus. */
  var TYPING = /^(INPUT|SELECT|TEXTAREA)$/;

  /* opts: the player, the clip (VC.video.clip), the timeline tl (VC.video.Timeline), and the
   * page's seek(t) and now(). */
  V.controls = function (opts) {
    var player = opts.player, clip = opts.clip, tl = opts.tl, seek = opts.seek, now = opts.now;

    function togglePlay() {
      if (!player.paused) { player.pause(); return; }
      // play() is a promise that a pause before it starts rejects: that is no error.
      var started = player.play();
      if (started && started.catch) started.catch(function () {});
    }
    function stepFrame(d) {
      player.pause();
      var k = Math.round((now() - clip.seekIn) * clip.fps);
      seek((k + d) / clip.fps);
    }
    /* To the next (d > 0) or previous keyframe in time, at least half a frame away. */
    function jumpKeyframe(d) {
      var t = now(), half = clip.frameS / 2, to = null;
      if (d > 0) to = clip.keyTimes.filter(function (k) { return k > t + half; })[0];
      else to = clip.keyTimes.filter(function (k) { return k < t - half; }).pop();
      if (to !== undefined && to !== null) seek(to);
    }
    function zoomIn() { tl.zoom(ZOOM_IN, now()); }
    function zoomOut() { tl.zoom(ZOOM_OUT, now()); }
    function showAll() { tl.showAll(); }

    document.getElementById("zoom-in").addEventListener("click", zoomIn);
    document.getElementById("zoom-out").addEventListener("click", zoomOut);
    document.getElementById("zoom-fit").addEventListener("click", showAll);

    /* By event.key: one character in lower case, a named key as is, with "S-" for Shift. */
    var keys = {
      " ": togglePlay, k: togglePlay,
      ArrowRight: function () { stepFrame(1); }, ".": function () { stepFrame(1); },
      ArrowLeft: function () { stepFrame(-1); }, ",": function () { stepFrame(-1); },
      "S-ArrowRight": function () { seek(now() + SKIP_S); },
      "S-ArrowLeft": function () { seek(now() - SKIP_S); },
      n: function () { jumpKeyframe(1); }, p: function () { jumpKeyframe(-1); },
      Home: function () { seek(0); }, End: function () { seek(clip.duration); },
      "+": zoomIn, "=": zoomIn, "-": zoomOut, "0": showAll,
    };
    window.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (target && TYPING.test(target.tagName)) return;
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
  };
})();
