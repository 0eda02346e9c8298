/* videocam review page of an evaluation: accuracy, confusion matrix, mean deletion and
 * insertion curves against random order, and the per-video table. */
(function () {
  var D = VC.data(), el = VC.el, S = D.summary || {};
  var rows = D.rows || [];
  var model = S.model || {};

  VC.text("title", D.title || "Evaluation");
  VC.text("subtitle", ["model " + (model.name || "?"), model.layer ? "layer " + model.layer : null,
    (S.config && S.config.method) ? "method " + S.config.method : null,
    S.steps ? S.steps + " steps" : null, S.random_seeds ? S.random_seeds + " random orders" : null,
  ].filter(Boolean).join(" · "));

  var means = S.means || {};
  var cards = document.getElementById("counts");
  function card(label, value, bad) {
    cards.appendChild(el("div", { class: "vc-card" + (bad ? " vc-card-bad" : "") }, [
      el("span", { class: "vc-card-n", text: value }),
      el("span", { class: "vc-card-label", text: label }),
    ]));
  }
  card("accuracy" + (S.n_labelled ? " (" + S.n_labelled + " labelled)" : ""),
    VC.isNum(S.accuracy) ? VC.pct(S.accuracy) : "n/a");
  card("videos", String(S.n_videos));
  card("failed", String(S.n_failed || 0), S.n_failed > 0);
  card("deletion AUC ↓ (random)", VC.num(means.deletion_auc) + " (" +
    VC.num(means.deletion_auc_random) + ")");
  card("insertion AUC ↑ (random)", VC.num(means.insertion_auc) + " (" +
    VC.num(means.insertion_auc_random) + ")");
  if (VC.isNum(means.average_drop)) card("average drop ↓", VC.num(means.average_drop));
  if (VC.isNum(means.increase_in_confidence)) {
    card("increase in confidence ↑", VC.num(means.increase_in_confidence));
  }
  if (VC.isNum(means.keyframe_hit_rate)) card("keyframe hit rate", VC.num(means.keyframe_hit_rate));
  if (VC.isNum(means.segment_iou)) card("segment IoU", VC.num(means.segment_iou));
  if (VC.isNum(means.pointing_boxed)) {
    card("pointing game: keyframes / boxed frames", VC.num(means.pointing_keyframes) + " / " +
      VC.num(means.pointing_boxed));
  }
  if (VC.isNum(means.energy_pointing)) card("energy in the box", VC.num(means.energy_pointing));
  if (VC.isNum(means.occlusion_deletion_auc)) {
    card("occlusion baseline: deletion ↓ / insertion ↑", VC.num(means.occlusion_deletion_auc) +
      " / " + VC.num(means.occlusion_insertion_auc));
  }
  if (S.sanity) {
    // Cascading randomisation: a high correlation with the random model's maps is a failure.
    card("sanity: rank corr. when random" + (S.sanity.flagged ? " (flagged)" : ""),
      VC.num(means.sanity_rank_corr), S.sanity.flagged);
  }

  /* ---- curves (SVG) -------------------------------------------------------------------- */
  var NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }
  function chart(kind) {
    var curves = S.curves || {};
    var solid = curves[kind], dashed = curves[kind + "_random"];
    var W = 420, H = 270, L = 44, R = 22, T = 46, B = 40;
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "vc-chart", role: "img",
      "aria-label": kind + " curves" });
    var all = (solid || []).concat(dashed || []).filter(VC.isNum);
    // A round top: 1, or the next quarter above the highest point.
    var ymax = Math.max(1, Math.ceil(Math.max.apply(null, all.length ? all : [1]) * 4) / 4);
    function x(f) { return L + f * (W - L - R); }
    function y(v) { return H - B - v / ymax * (H - T - B); }
    var step = ymax > 2 ? 0.5 : 0.25;
    for (var v = 0; v <= ymax + 1e-9; v += step) {
      box.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "vc-grid" }));
      var label = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "vc-tick" });
      label.textContent = v.toFixed(2);
      box.appendChild(label);
    }
    for (var p = 0; p <= 100; p += 25) {
      var tx = svg("text", { x: x(p / 100), y: H - B + 16, "text-anchor": "middle",
        class: "vc-tick" });
      tx.textContent = p + "%";
      box.appendChild(tx);
    }
    var xl = svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle",
      class: "vc-axis-label" });
    xl.textContent = "frames " + (kind === "deletion" ? "removed" : "inserted");
    box.appendChild(xl);
    var title = svg("text", { x: L, y: 16, class: "vc-chart-title" });
    title.textContent = kind + " (" + (kind === "deletion" ? "lower" : "higher") +
      " area is better)";
    box.appendChild(title);
    [[solid, "vc-line", "attribution order"], [dashed, "vc-line vc-dashed", "random order"]]
      .forEach(function (c, i) {
        if (!c[0] || !c[0].length) return;
        var n = c[0].length;
        var points = c[0].map(function (v, j) {
          return x(n > 1 ? j / (n - 1) : 0).toFixed(1) + "," + y(v).toFixed(1);
        }).join(" ");
        box.appendChild(svg("polyline", { points: points, class: c[1] }));
        // The legend sits above the plot, under the title: it never covers a curve.
        var lx = L + 150 * i, ly = 32;
        box.appendChild(svg("line", { x1: lx, x2: lx + 22, y1: ly, y2: ly, class: c[1] }));
        var lt = svg("text", { x: lx + 28, y: ly + 4, class: "vc-tick" });
        lt.textContent = c[2];
        box.appendChild(lt);
      });
    return box;
  }
  var charts = document.getElementById("curves");
  if (S.curves && (S.curves.deletion || S.curves.insertion)) {
    charts.appendChild(chart("deletion"));
    charts.appendChild(chart("insertion"));
  } else {
    charts.appendChild(el("p", { class: "vc-muted", text: "No curves: no video succeeded." }));
  }

  /* ---- confusion matrix ---------------------------------------------------------------- */
  var cm = S.confusion_matrix;
  var cmBox = document.getElementById("confusion");
  if (cm && cm.classes && cm.classes.length) {
    var max = 0;
    cm.matrix.forEach(function (r) { r.forEach(function (v) { max = Math.max(max, v); }); });
    var head = el("tr", null, [el("th", { class: "vc-corner", text: "label ↓ / predicted →" })]);
    cm.classes.forEach(function (c) { head.appendChild(el("th", { scope: "col", text: c })); });
    var body = el("tbody");
    cm.matrix.forEach(function (r, i) {
      var tr = el("tr", null, [el("th", { scope: "row", text: cm.classes[i] })]);
      r.forEach(function (v, j) {
        var td = el("td", { class: "num" + (i === j ? " vc-diag" : v ? " vc-off" : ""),
          text: String(v) });
        if (v && max) {
          var a = (0.12 + 0.6 * v / max).toFixed(2);
          td.style.backgroundColor = i === j ? "rgba(47, 158, 68, " + a + ")"
            : "rgba(224, 49, 49, " + a + ")";
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    cmBox.appendChild(el("table", { class: "vc-table vc-cm" }, [el("thead", null, [head]), body]));
  } else {
    cmBox.appendChild(el("p", { class: "vc-muted", text: "No labels in the manifest: no " +
      "accuracy or confusion matrix." }));
  }

  /* ---- per-video table ----------------------------------------------------------------- */
  rows.forEach(function (r) {
    if (r.correct === false) r.__class = "vc-row-wrong";
    else if (r.status === "failed") r.__class = "vc-row-failed";
  });
  var metric = function (key, label) {
    return { key: key, label: label, num: true, cell: function (r) { return VC.num(r[key]); } };
  };
  var firstWrong = document.getElementById("wrong-first");
  var table = new VC.Table({
    table: document.getElementById("videos"), rows: rows, noun: "videos", pageSize: 200,
    sortKey: null,
    count: document.getElementById("shown"), pager: document.getElementById("pager"),
    group: function (r) { return firstWrong.checked ? (r.correct === false ? 0 : r.status ===
      "failed" ? 1 : 2) : 0; },
    columns: [
      { key: "path", label: "video", cell: function (r) {
        return el("div", { class: "vc-name", title: r.path, text: r.name });
      } },
      { key: "label", label: "label" },
      { key: "predicted", label: "predicted" },
      { key: "correct", label: "correct", value: function (r) {
        return r.correct === null ? null : r.correct ? 1 : 0; }, cell: function (r) {
        if (r.correct === null || r.correct === undefined) return "";
        return el("span", { class: r.correct ? "vc-ok" : "vc-bad", text: r.correct ? "yes" : "no" });
      } },
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
      { key: "status", label: "status", cell: function (r) {
        // A failure's message is in the list above; here its type, the message on hover.
        var type = r.status === "failed" ? String(r.error || "").split(":")[0] : "";
        return el("span", { class: "vc-status vc-status-" + (r.status || "").replace(/[^a-z-]/g, ""),
          title: r.error || null, text: r.status + (type ? " (" + type + ")" : "") }); } },
    ],
  });
  firstWrong.addEventListener("change", function () { table.refresh(); });

  var failures = rows.filter(function (r) { return r.status === "failed"; });
  if (failures.length) {
    document.getElementById("failures-section").hidden = false;
    var list = document.getElementById("failures");
    failures.forEach(function (r) {
      list.appendChild(el("li", null, [el("strong", { text: r.name }), " ",
        el("span", { class: "vc-error-text", text: r.error })]));
    });
  }
  document.body.setAttribute("data-ready", "true");
})();
