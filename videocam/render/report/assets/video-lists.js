/* videocam review page of one video: the keyframe gallery (VC.video.gallery) and the segments
 * table (VC.video.segments), each entry a way to seek the player to its time. */
(function () {
  "use strict";
  var V = VC.video || (VC.video = {});
  var el = VC.el;

  /* Decimals of a second of the times shown (to the millisecond) and of a duration. */
  var TIME_DIGITS = 3, DURATION_DIGITS = 2;

  function card(k, seek) {
    var img = k.image ? el("img", { src: k.image, alt: "keyframe " + k.rank, loading: "lazy" })
      : el("div", { class: "vc-noimg", text: "no image" });
    var button = el("button", { type: "button", class: "vc-kf", "data-rank": k.rank,
      "data-time": k.time_s, title: "Seek to " + VC.clock(k.time_s, TIME_DIGITS) }, [
      img,
      el("span", { class: "vc-kf-rank", text: "#" + k.rank }),
      el("span", { class: "vc-kf-time", text: VC.clock(k.time_s) + " · frame " +
        k.frame_index }),
      el("span", { class: "vc-kf-nums", text: "attribution " + VC.num(k.attribution) +
        " · score " + VC.num(k.target_score) }),
    ]);
    button.addEventListener("click", function () { seek(k.time_s); });
    return button;
  }

  /* A card per keyframe, in rank order: its image, rank, time and numbers. */
  V.gallery = function (keyframes, seek) {
    var box = document.getElementById("gallery");
    if (!keyframes.length) {
      box.appendChild(el("p", { class: "vc-muted", text: "No keyframes: no frame's attribution" +
        " reached the floor." }));
      return;
    }
    keyframes.forEach(function (k) { box.appendChild(card(k, seek)); });
  };

  V.segments = function (clip, seek) {
    var table = document.getElementById("segments");
    var rows = clip.segments.map(function (s, i) {
      return Object.assign({ n: i + 1, duration: s.end_s - s.start_s + clip.frameS }, s);
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
    function time(key) {
      return function (r) { return seekButton(r[key], VC.clock(r[key], TIME_DIGITS)); };
    }
    new VC.Table({
      table: table, rows: rows, noun: "segments", sortKey: "start_s",
      columns: [
        { key: "n", label: "#", num: true },
        { key: "start_s", label: "start", num: true, cell: time("start_s") },
        { key: "end_s", label: "end", num: true, cell: function (r) {
          return VC.clock(r.end_s, TIME_DIGITS); } },
        { key: "duration", label: "duration", num: true, cell: function (r) {
          return VC.clock(r.duration, DURATION_DIGITS); } },
        { key: "peak_s", label: "peak", num: true, cell: function (r) {
          return VC.isNum(r.peak_s) ? seekButton(r.peak_s, VC.clock(r.peak_s, TIME_DIGITS) +
            " (frame " + r.peak_frame + ")") : VC.MISSING; } },
        { key: "attribution", label: "mean attribution", num: true, cell: function (r) {
          return VC.num(r.attribution); } },
      ],
    });
  };
})();
