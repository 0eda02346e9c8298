/* videocam review page of one video: the header, the warnings and the summary beside the
 * player (VC.video.header, VC.video.warnings, VC.video.summary). */
(function () {
  "use strict";
  var V = VC.video || (VC.video = {});
  var el = VC.el;

  /* Decimals of the top classes' probabilities, the frame rate and the timings (seconds). */
  var PROB_DIGITS = 3, FPS_DIGITS = 3, TIMING_DIGITS = 2;

  /* "tabby (281)", or "" / "?" parts left out where the summary has no name or index. */
  function targetName(target, missing, indexWord) {
    return (target.name === undefined ? missing : target.name) +
      (target.index === undefined ? "" : " (" + indexWord + target.index + ")");
  }

  V.header = function (D) {
    var S = D.summary || {};
    VC.heading(D.name || "video", [
      "explains " + targetName(S.target || {}, "?", ""),
      "method " + (S.method || "?"),
      "model " + ((S.model || {}).name || "?"),
      D.n_frames + " frames analysed",
    ]);
  };

  V.warnings = function (warnings) {
    if (!warnings.length) return;
    var box = document.getElementById("warnings");
    box.appendChild(el("h2", { text: warnings.length === 1 ? "Warning" : warnings.length +
      " warnings" }));
    var list = el("ul");
    warnings.forEach(function (w) { list.appendChild(el("li", { text: w })); });
    box.appendChild(list);
    box.hidden = false;
  };

  function section(title, node) {
    return el("section", { class: "vc-panel" }, [el("h3", { text: title }), node]);
  }
  function shape(s) { return s && s.length ? s.join("×") : null; }

  /* The classes the model gave the video most, as bars; the explained one stands out. */
  function topClasses(target) {
    var top = el("ol", { class: "vc-top" });
    (target.video_top_classes || []).forEach(function (c) {
      var bar = el("span", { class: "vc-bar" });
      bar.style.width = (100 * Math.max(0, Math.min(1, c.mean_prob || 0))).toFixed(1) + "%";
      top.appendChild(el("li", { class: c.index === target.index ? "vc-target" : null }, [
        el("span", { class: "vc-top-name", text: c.name }),
        el("span", { class: "vc-top-p", text: VC.num(c.mean_prob, PROB_DIGITS) }),
        el("span", { class: "vc-bar-track" }, [bar]),
      ]));
    });
    return top;
  }

  function explainedPanel(D) {
    var S = D.summary || {}, target = S.target || {};
    var top = topClasses(target);
    return section("Explained class", VC.dl([
      ["target", targetName(target, "", "index ") + (target.auto ? ", chosen automatically" : "")],
      ["skipped background", target.skipped_background_class],
      ["method", S.method],
      ["peak target score", VC.num(D.stats.peak_target_score)],
      ["peak attribution", VC.num(D.stats.peak_attribution)],
      ["time in segments", VC.pct(D.stats.segment_share)],
      ["top classes", top.childNodes.length ? top : null],
    ]));
  }

  /* How the model saw the video: a per-frame model one frame at a time, a video model in
   * windows of clip_len frames. */
  function windowsFact(model, w) {
    if (!w) return ["windows", null];
    if (model.kind === "frame" || w.clip_len === 1) {
      return ["analysed", "per frame: " + VC.plural(w.n_windows, "frames")];
    }
    return ["windows", VC.plural(w.n_windows, "windows") + " of " + w.clip_len +
      " frames, stride " + w.stride];
  }

  function modelPanel(S) {
    var model = S.model || {}, mapShape = model.layer_map_shape;
    return section("Model", VC.dl([
      ["name", model.name + (model.kind ? " (" + model.kind + ")" : "")],
      ["weights", model.weights],
      ["layer", model.layer],
      ["layer map", shape(mapShape) && shape(mapShape) + (mapShape.length === 3 ? " (t′×h×w)" :
        " (h×w)")],
      ["input size", shape(model.input_size)],
      ["device", model.device],
      windowsFact(model, S.windows),
    ]));
  }

  function videoPanel(video, tags) {
    var tagList = Object.keys(tags).map(function (k) { return [k, tags[k]]; });
    return section("Video", VC.dl([
      ["file", video.path],
      ["size", video.width ? video.width + "×" + video.height : null],
      ["frame rate", VC.isNum(video.fps) ? VC.num(video.fps, FPS_DIGITS) + " fps" : null],
      ["duration", VC.clock(video.duration_s)],
      ["frames", video.n_frames],
      ["codec", video.codec],
      ["rotation", video.rotation ? video.rotation + "°" : null],
    ].concat(tagList)));
  }

  function decodingPanel(decode, decoder) {
    var damaged = (decode.decode_errors || 0) + " damaged (" +
      (decode.skipped_frames || []).length + " skipped, " +
      (decode.corrupt_frames || []).length + " concealed)";
    return section("Decoding", VC.dl([
      ["decoder", decoder.backend + (decoder.requested ? " (asked: " + decoder.requested + ")" :
        "")],
      ["why", decoder.reason],
      ["frames", damaged],
      ["size changes", (decode.size_changes || []).length || null],
    ]));
  }

  /* A panel of one summary object's entries, each as value(entry) says. */
  function entriesPanel(title, object, term, value) {
    return section(title, VC.dl(Object.keys(object).map(function (k) {
      return [term(k), value(object[k])];
    })));
  }
  function same(x) { return x; }

  V.summary = function (D) {
    var S = D.summary || {};
    var aside = document.getElementById("summary");
    aside.appendChild(explainedPanel(D));
    aside.appendChild(modelPanel(S));
    aside.appendChild(videoPanel(S.video || {}, D.tags || {}));
    aside.appendChild(decodingPanel(S.decode || {}, S.decoder || {}));
    aside.appendChild(entriesPanel("Timings", S.timings_s || {}, function (k) {
      return k.replace(/_s$/, "");
    }, function (v) { return VC.num(v, TIMING_DIGITS) + " s"; }));
    aside.appendChild(entriesPanel("Versions", S.versions || {}, same, same));
    aside.appendChild(el("details", { class: "vc-panel" }, [
      el("summary", { text: "Options (config)" }),
      el("pre", { text: JSON.stringify(S.config || {}, null, 1) }),
    ]));
  };
})();
