/* videocam review page of an evaluation: accuracy, confusion matrix, mean deletion and
 * insertion curves against random order, and the per-video table. */
(function () {
  "use strict";
  var el = VC.el;

  var SVG_NS = "http://www.w3.org/2000/svg";
  /* A chart's size and its plot's margins, in SVG units. */
  var CHART = { width: 420, height: 270, left: 44, right: 22, top: 46, bottom: 40 };
  /* The y axis: a grid line every Y_STEP (Y_STEP_TALL above 2) and labels Y_LABEL_GAP left of
   * the plot, Y_LABEL_DROP under their line; the x axis: a label every X_STEP percent, X_LABEL_DROP
   * under the plot, its name X_NAME_RISE above the bottom; the title's baseline. */
  var Y_STEP = 0.25, Y_STEP_TALL = 0.5, Y_TALL = 2, Y_LABEL_GAP = 6, Y_LABEL_DROP = 4;
  var X_STEP = 25, X_LABEL_DROP = 16, X_NAME_RISE = 6, TITLE_Y = 16;
  /* The y axis tops at 1 or the next 1/Y_ROUND above the highest point. */
  var Y_ROUND = 4;
  /* The legend, above the plot: its entries LEGEND_STEP apart at LEGEND_Y, each a line
   * LEGEND_LINE long and its text LEGEND_TEXT from the line's start, LEGEND_DROP lower. */
  var LEGEND_STEP = 150, LEGEND_Y = 32, LEGEND_LINE = 22, LEGEND_TEXT = 28, LEGEND_DROP = 4;
  /* Confusion matrix cells: opacity from BASE (a count of 1) up to BASE + RANGE (the largest),
   * green on the diagonal, red off it. */
  var CM_ALPHA_BASE = 0.12, CM_ALPHA_RANGE = 0.6;
  var CM_RIGHT = "rgba(47, 158, 68, ", CM_WRONG = "rgba(224, 49, 49, ";
  var VIDEOS_PER_PAGE = 200;
  /* Slack of the loop over the grid lines' values. */
  var EPS = 1e-9;

  function card(label, value, bad) {
    document.getElementById("counts").appendChild(VC.card(label, value, bad));
  }

  /* The cards of the metrics the summary has (each optional one only when it is a number). */
  function metricCards(S) {
    var means = S.means || {};
    card("accuracy" + (S.n_labelled ? " (" + S.n_labelled + " labelled)" : ""),
      VC.isNum(S.accuracy) ? VC.pct(S.accuracy) : "n/a");
    card("videos", String(S.n_videos));
    card("failed", String(S.n_failed || 0), S.n_failed > 0);
    card("deletion AUC ↓ (random)", VC.num(means.deletion_auc) + " (" +
      VC.num(means.deletion_auc_random) + ")");
    card("insertion AUC ↑ (random)", VC.num(means.insertion_auc) + " (" +
      VC.num(means.insertion_auc_random) + ")");
    [
      ["average_drop", "average drop ↓", [means.average_drop]],
      ["increase_in_confidence", "increase in confidence ↑", [means.increase_in_confidence]],
      ["keyframe_hit_rate", "keyframe hit rate", [means.keyframe_hit_rate]],
      ["segment_iou", "segment IoU", [means.segment_iou]],
      ["pointing_boxed", "pointing game: keyframes / boxed frames",
        [means.pointing_keyframes, means.pointing_boxed]],
      ["energy_pointing", "energy in the box", [means.energy_pointing]],
      ["occlusion_deletion_auc", "occlusion baseline: deletion ↓ / insertion ↑",
        [means.occlusion_deletion_auc, means.occlusion_insertion_auc]],
    ].forEach(function (c) {
      if (VC.isNum(means[c[0]])) card(c[1], c[2].map(function (v) { return VC.num(v); }).join(" / "));
    });
    if (S.sanity) {
      // Cascading randomisation: a high correlation with the random model's maps is a failure.
      card("sanity: rank corr. when random" + (S.sanity.flagged ? " (flagged)" : ""),
        VC.num(means.sanity_rank_corr), S.sanity.flagged);
    }
  }

  /* ---- curves (SVG) -------------------------------------------------------------------- */

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* The plot's scales: x(f) for a fraction of the frames, y(v) for a relative score. */
  function scales(ymax) {
    var C = CHART;
    return {
      x: function (f) { return C.left + f * (C.width - C.left - C.right); },
      y: function (v) { return C.height - C.bottom - v / ymax * (C.height - C.top - C.bottom); },
    };
  }

  function axes(box, kind, ymax, s) {
    var C = CHART;
    var step = ymax > Y_TALL ? Y_STEP_TALL : Y_STEP;
    for (var v = 0; v <= ymax + EPS; v += step) {
      box.appendChild(svg("line", { x1: C.left, x2: C.width - C.right, y1: s.y(v), y2: s.y(v),
        class: "vc-grid" }));
      box.appendChild(svg("text", { x: C.left - Y_LABEL_GAP, y: s.y(v) + Y_LABEL_DROP,
        "text-anchor": "end", class: "vc-tick" }, v.toFixed(2)));
    }
    for (var p = 0; p <= 100; p += X_STEP) {
      box.appendChild(svg("text", { x: s.x(p / 100), y: C.height - C.bottom + X_LABEL_DROP,
        "text-anchor": "middle", class: "vc-tick" }, p + "%"));
    }
    box.appendChild(svg("text", { x: (C.left + C.width - C.right) / 2, y: C.height - X_NAME_RISE,
      "text-anchor": "middle", class: "vc-axis-label" },
      "frames " + (kind === "deletion" ? "removed" : "inserted")));
    box.appendChild(svg("text", { x: C.left, y: TITLE_Y, class: "vc-chart-title" },
      kind + " (" + (kind === "deletion" ? "lower" : "higher") + " area is better)"));
  }

  /* A curve's line, and its entry in the legend (above the plot, under the title: it never
   * covers a curve). */
  function curve(box, values, style, label, i, s) {
    if (!values || !values.length) return;
    var n = values.length;
    var points = values.map(function (v, j) {
      return s.x(n > 1 ? j / (n - 1) : 0).toFixed(1) + "," + s.y(v).toFixed(1);
    }).join(" ");
    box.appendChild(svg("polyline", { points: points, class: style }));
    var lx = CHART.left + LEGEND_STEP * i, ly = LEGEND_Y;
    box.appendChild(svg("line", { x1: lx, x2: lx + LEGEND_LINE, y1: ly, y2: ly, class: style }));
    box.appendChild(svg("text", { x: lx + LEGEND_TEXT, y: ly + LEGEND_DROP, class: "vc-tick" },
      label));
  }

  /* The mean curve of one kind (deletion, insertion) and its random-order baseline. */
  function chart(S, kind) {
    var curves = S.curves || {};
    var solid = curves[kind], dashed = curves[kind + "_random"];
    var box = svg("svg", { viewBox: "0 0 " + CHART.width + " " + CHART.height, class: "vc-chart",
      role: "img", "aria-label": kind + " curves" });
    var all = (solid || []).concat(dashed || []).filter(VC.isNum);
    var ymax = Math.max(1, Math.ceil(Math.max.apply(null, all.length ? all : [1]) * Y_ROUND) /
      Y_ROUND);
    var s = scales(ymax);
    axes(box, kind, ymax, s);
    curve(box, solid, "vc-line", "attribution order", 0, s);
    curve(box, dashed, "vc-line vc-dashed", "random order", 1, s);
    return box;
  }

  function charts(S) {
    var box = document.getElementById("curves");
    if (S.curves && (S.curves.deletion || S.curves.insertion)) {
      box.appendChild(chart(S, "deletion"));
      box.appendChild(chart(S, "insertion"));
    } else {
      box.appendChild(el("p", { class: "vc-muted", text: "No curves: no video succeeded." }));
    }
  }

  /* ---- confusion matrix ---------------------------------------------------------------- */

  function matrixCell(v, right, max) {
    var td = el("td", { class: "num" + (right ? " vc-diag" : v ? " vc-off" : ""), text: String(v) });
    if (v && max) {
      var a = (CM_ALPHA_BASE + CM_ALPHA_RANGE * v / max).toFixed(2);
      td.style.backgroundColor = (right ? CM_RIGHT : CM_WRONG) + a + ")";
    }
    return td;
  }

  function confusion(cm) {
    var box = document.getElementById("confusion");
    if (!(cm && cm.classes && cm.classes.length)) {
      box.appendChild(el("p", { class: "vc-muted", text: "No labels in the manifest: no " +
        "accuracy or confusion matrix." }));
      return;
    }
    var max = 0;
    cm.matrix.forEach(function (r) { r.forEach(function (v) { max = Math.max(max, v); }); });
    var head = el("tr", null, [el("th", { class: "vc-corner", text: "label ↓ / predicted →" })]);
    cm.classes.forEach(function (c) { head.appendChild(el("th", { scope: "col", text: c })); });
    var body = el("tbody");
    cm.matrix.forEach(function (r, i) {
      var tr = el("tr", null, [el("th", { scope: "row", text: cm.classes[i] })]);
      r.forEach(function (v, j) { tr.appendChild(matrixCell(v, i === j, max)); });
      body.appendChild(tr);
    });
    box.appendChild(el("table", { class: "vc-table vc-cm" }, [el("thead", null, [head]), body]));
  }

  /* ---- per-video table ----------------------------------------------------------------- */

  function metric(key, label) {
    return { key: key, label: label, num: true, cell: function (r) { return VC.num(r[key]); } };
  }

  function correctCell(r) {
    if (r.correct === null || r.correct === undefined) return "";
    return el("span", { class: r.correct ? "vc-ok" : "vc-bad", text: r.correct ? "yes" : "no" });
  }

  /* A failure's message is in the list above; here its type, the message on hover. */
  function statusCell(r) {
    var type = r.status === "failed" ? String(r.error || "").split(":")[0] : "";
    return VC.statusBadge(r.status, r.status + (type ? " (" + type + ")" : ""), r.error);
  }

  /* Misclassified videos first (when the box is ticked), then failures, then the rest. */
  function wrongFirst(box) {
    return function (r) {
      if (!box.checked) return 0;
      return r.correct === false ? 0 : r.status === "failed" ? 1 : 2;
    };
  }

  function videosTable(rows) {
    rows.forEach(function (r) {
      if (r.correct === false) r.__class = "vc-row-wrong";
      else if (r.status === "failed") r.__class = "vc-row-failed";
    });
    var firstWrong = document.getElementById("wrong-first");
    var table = new VC.Table({
      table: document.getElementById("videos"), rows: rows, noun: "videos",
      pageSize: VIDEOS_PER_PAGE, sortKey: null,
      count: document.getElementById("shown"), pager: document.getElementById("pager"),
      group: wrongFirst(firstWrong),
      columns: [
        { key: "path", label: "video", cell: function (r) {
          return el("div", { class: "vc-name", title: r.path, text: r.name });
        } },
        { key: "label", label: "label" },
        { key: "predicted", label: "predicted" },
        { key: "correct", label: "correct", value: function (r) {
          return r.correct === null ? null : r.correct ? 1 : 0; }, cell: correctCell },
        { key: "target", label: "explained" },
        metric("deletion_auc", "deletion ↓"),
        metric("deletion_auc_random", "deletion, random"),
        metric("insertion_auc", "insertion ↑"),
        metric("insertion_auc_random", "insertion, random"),
        metric("average_drop", "average drop ↓"),
        metric("increase_in_confidence", "increase in confidence ↑"),
        metric("keyframe_hit_rate", "keyframe hits"),
        metric("segment_iou", "segment IoU"),
        metric("pointing_keyframes", "pointing, keyframes"),
        metric("pointing_boxed", "pointing, boxed frames"),
        metric("energy_pointing", "energy in box"),
        metric("occlusion_deletion_auc", "occlusion: deletion"),
        metric("occlusion_insertion_auc", "occlusion: insertion"),
        metric("occlusion_keyframe_hit_rate", "occlusion: keyframe hits"),
        metric("sanity_rank_corr", "sanity rank corr."),
        { key: "status", label: "status", cell: statusCell },
      ],
    });
    firstWrong.addEventListener("change", function () { table.refresh(); });
  }

  function failures(rows) {
    var failed = rows.filter(function (r) { return r.status === "failed"; });
    if (!failed.length) return;
    document.getElementById("failures-section").hidden = false;
    var list = document.getElementById("failures");
    failed.forEach(function (r) {
      list.appendChild(el("li", null, [el("strong", { text: r.name }), " ",
        el("span", { class: "vc-error-text", text: r.error })]));
    });
  }

  function header(D, S) {
    var model = S.model || {};
    VC.heading(D.title || "Evaluation", ["model " + (model.name || "?"),
      model.layer ? "layer " + model.layer : null,
      (S.config && S.config.method) ? "method " + S.config.method : null,
      S.steps ? S.steps + " steps" : null, S.random_seeds ? S.random_seeds + " random orders" : null,
    ]);
  }

  var D = VC.data(), S = D.summary || {};
  var rows = D.rows || [];
  header(D, S);
  metricCards(S);
  charts(S);
  confusion(S.confusion_matrix);
  videosTable(rows);
  failures(rows);
  VC.ready();
})();
