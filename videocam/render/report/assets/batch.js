/* videocam review page of a batch: one row per video, sortable, filterable, paged; links into
 * each video's own page at a keyframe's time. */
(function () {
  var D = VC.data(), el = VC.el;
  var rows = D.rows || [];
  var counts = D.counts || {};

  VC.text("title", D.title || "Batch");
  VC.text("subtitle", [
    VC.plural(counts.videos || 0, "videos"),
    D.model ? "model " + D.model : null,
    D.method ? "method " + D.method : null,
    D.updated_at ? "updated " + D.updated_at : null,
  ].filter(Boolean).join(" · "));

  var banner = document.getElementById("state");
  if (D.finished) {
    banner.textContent = "Batch finished.";
    banner.className = "vc-state vc-state-done";
  } else {
    banner.textContent = "Batch in progress: " + (counts.pending || 0) + " video(s) pending. " +
      "Reload the page to see newer results.";
    banner.className = "vc-state vc-state-running";
  }

  var cards = document.getElementById("counts");
  [["videos", counts.videos], ["ok", counts.ok], ["complete before", counts.skipped_complete],
    ["failed", counts.failed], ["pending", counts.pending]].forEach(function (c) {
    if (c[0] === "complete before" && !c[1]) return;
    cards.appendChild(el("div", { class: "vc-card" + (c[0] === "failed" && c[1] ? " vc-card-bad" : "") }, [
      el("span", { class: "vc-card-n", text: VC.isNum(c[1]) ? String(c[1]) : "0" }),
      el("span", { class: "vc-card-label", text: c[0] }),
    ]));
  });

  function reportLink(row, t, label) {
    if (!row.report) return el("span", { text: label });
    return el("a", { href: row.report + (t === null ? "" : "#t=" + t.toFixed(3)), text: label });
  }

  var failed = rows.filter(function (r) { return r.status === "failed"; });
  if (failed.length) {
    document.getElementById("failures-section").hidden = false;
    new VC.Table({
      table: document.getElementById("failures"), rows: failed.slice(), noun: "failures",
      count: document.getElementById("failures-count"), pageSize: 50,
      pager: document.getElementById("failures-pager"),
      columns: [
        { key: "name", label: "video" },
        { key: "error_type", label: "error type", cell: function (r) {
          return el("code", { text: r.error_type }); } },
        { key: "error", label: "message", cell: function (r) {
          return el("span", { class: "vc-error-text", text: r.error }); } },
        { key: "output", label: "log", sortable: false, cell: function (r) {
          return r.log ? el("a", { href: r.log, text: "log.txt" }) : ""; } },
      ],
    });
  }

  var statusOrder = { failed: 0, pending: 1, ok: 2, "skipped-complete": 2 };
  var table = new VC.Table({
    table: document.getElementById("videos"), rows: rows, noun: "videos", pageSize: 100,
    count: document.getElementById("shown"), pager: document.getElementById("pager"),
    sortKey: "peak_target_score", desc: true,
    columns: [
      { key: "thumb", label: "", sortable: false, cell: function (r) {
        if (!r.thumb) return el("span", { class: "vc-thumb vc-noimg" });
        var img = el("img", { src: r.thumb, alt: "", loading: "lazy", class: "vc-thumb" });
        return r.report ? el("a", { href: r.report + "#t=" + (r.keyframes[0] || 0).toFixed(3),
          tabindex: "-1" }, [img]) : img;
      } },
      { key: "name", label: "video", cell: function (r) {
        var box = el("div", { class: "vc-name" }, [reportLink(r, null, r.name)]);
        if (r.status === "failed") {
          box.appendChild(el("div", { class: "vc-error-text" }, [
            el("code", { text: r.error_type }), " " + r.error]));
        }
        return box;
      } },
      { key: "status", label: "status", value: function (r) { return statusOrder[r.status]; },
        cell: function (r) {
          return el("span", { class: "vc-status vc-status-" + r.status.replace(/[^a-z-]/g, ""),
            text: r.status });
        } },
      { key: "target", label: "class" },
      { key: "peak_target_score", label: "peak score", num: true, cell: function (r) {
        return VC.num(r.peak_target_score); } },
      { key: "peak_attribution", label: "peak attribution", num: true, cell: function (r) {
        return VC.num(r.peak_attribution); } },
      { key: "segment_share", label: "in segments", num: true, cell: function (r) {
        return VC.pct(r.segment_share); } },
      { key: "keyframes", label: "keyframes", value: function (r) {
        return r.keyframes.length ? r.keyframes[0] : null; }, cell: function (r) {
        var box = el("div", { class: "vc-times" });
        r.keyframes.forEach(function (t, i) {
          box.appendChild(reportLink(r, t, VC.clock(t, 2)));
          if (i < r.keyframes.length - 1) box.appendChild(document.createTextNode(" "));
        });
        return box;
      } },
    ],
  });

  function options(select, label, values) {
    select.appendChild(el("option", { value: "", text: label }));
    values.forEach(function (v) { select.appendChild(el("option", { value: v, text: v })); });
  }
  var classes = {}, statuses = {};
  rows.forEach(function (r) {
    if (r.target) classes[r.target] = true;
    statuses[r.status] = true;
  });
  var classSelect = document.getElementById("class-filter");
  var statusSelect = document.getElementById("status-filter");
  var search = document.getElementById("search");
  options(classSelect, "every class", Object.keys(classes).sort());
  options(statusSelect, "every status", Object.keys(statuses).sort());
  function apply() {
    var cls = classSelect.value, status = statusSelect.value;
    var q = search.value.trim().toLowerCase();
    table.setFilter(function (r) {
      return (!cls || r.target === cls) && (!status || r.status === status) &&
        (!q || r.name.toLowerCase().indexOf(q) >= 0);
    });
  }
  classSelect.addEventListener("change", apply);
  statusSelect.addEventListener("change", apply);
  search.addEventListener("input", apply);
  document.body.setAttribute("data-ready", "true");
})();
