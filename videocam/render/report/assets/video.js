/* videocam review page of one video: the player, the interactive timeline, the keyframe
 * gallery, the segments and the summary. This file runs the page; the parts are in the
 * video-*.js files before it (page.py joins them): video-model.js (the data's times, the
 * timeline's lanes), video-summary.js, video-draw.js, video-timeline.js, video-pointer.js,
 * video-controls.js and video-lists.js. */
(function () {
  "use strict";
  var V = VC.video;
  var D = VC.data();
  var clip = V.clip(D);
  var player = document.getElementById("player");

  /* Decimals of a second of the readout's time and of the #t= the page keeps in its address. */
  var TIME_DIGITS = 3;
  /* #t=SECONDS (alone or after other parameters). */
  var HASH_TIME = /(?:^#|&)t=([0-9]+(?:\.[0-9]*)?)/;
  /* The player's readyState once it knows the clip's duration (HTMLMediaElement.HAVE_METADATA). */
  var HAVE_METADATA = 1;

  V.header(D);
  V.warnings((D.summary || {}).warnings || []);
  V.summary(D);

  VC.setLink(player, "src", D.video);
  player.addEventListener("error", function () {
    var box = document.getElementById("player-error");
    box.textContent = "The browser cannot play " + D.video + " (it needs H.264 in MP4). " +
      "The timeline, keyframes and tables still work.";
    box.hidden = false;
  });
  function now() { return player.currentTime || 0; }

  var tl = new V.Timeline({ clip: clip, lanes: V.lanes(D), now: now, onOverlay: readout });

  function seek(t) {
    var to = clip.clampTime(t) + clip.seekIn;
    player.currentTime = to;
    tl.follow(to, true);
    tl.drawOverlay();
  }

  /* The line under the player: time, frame, its numbers; and the keyframe card of the
   * keyframe at t (if any) marked current. */
  function readout(t) {
    var i = clip.frameAt(t), lanes = tl.lanes;
    var k = clip.keyframes.filter(function (kf) {
      return Math.abs(kf.time_s - t) < clip.frameS / 2 + clip.seekIn;
    })[0];
    var parts = [VC.clock(t, TIME_DIGITS),
      "frame " + (clip.times.length ? clip.frameIndex[i] : VC.MISSING),
      "attribution " + VC.num(lanes[0].curve.values[i]),
      "target score " + VC.num(lanes[1].curve.values[i])];
    if (k) parts.push("keyframe " + k.rank);
    VC.text("readout", parts.join(VC.SEPARATOR));
    document.querySelectorAll(".vc-kf").forEach(function (card) {
      if (k && card.getAttribute("data-rank") === String(k.rank)) card.setAttribute("aria-current", "true");
      else card.removeAttribute("aria-current");
    });
  }

  V.pointer(tl, clip, player);
  V.gallery(clip.keyframes, seek);
  V.segments(clip, seek);
  V.controls({ player: player, clip: clip, tl: tl, seek: seek, now: now });

  /* ---- #t=SECONDS -------------------------------------------------------------------------- */

  function hashTime() {
    var m = HASH_TIME.exec(location.hash);
    return m ? parseFloat(m[1]) : null;
  }
  function fromHash() {
    var t = hashTime();
    if (t === null) return;
    if (player.readyState >= HAVE_METADATA) seek(t);
    else player.addEventListener("loadedmetadata", function once() {
      player.removeEventListener("loadedmetadata", once);
      seek(t);
    });
    tl.follow(t, true);
  }
  window.addEventListener("hashchange", fromHash);
  player.addEventListener("pause", function () {
    try {
      history.replaceState(null, "", "#t=" + now().toFixed(TIME_DIGITS));
    } catch {
      // Some browsers refuse it on file:// pages: the link simply stays.
    }
  });

  /* ---- playback ----------------------------------------------------------------------------- */

  var raf = null;
  function tick() {
    tl.follow(now(), false);
    tl.drawOverlay();
    raf = player.paused ? null : requestAnimationFrame(tick);
  }
  player.addEventListener("play", function () { if (raf === null) raf = requestAnimationFrame(tick); });
  ["seeked", "timeupdate", "loadedmetadata"].forEach(function (name) {
    player.addEventListener(name, function () { tl.follow(now(), true); tl.drawOverlay(); });
  });
  window.addEventListener("resize", function () { tl.redraw(); });

  tl.redraw();
  fromHash();
  VC.ready();
})();
