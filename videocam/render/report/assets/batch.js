/* videocam review page of a batch: one row per video, sortable, filterable, paged; links into
 * each video's own page at a keyframe's time. */
(function () {
  "use strict";
  var el = VC.el;

  /* Rows per page of the videos' table, of the failures' table and of the moments'. */
  var VIDEOS_PER_PAGE = 100, FAILURES_PER_PAGE = 50, MOMENTS_PER_PAGE = 50;
  /* Sorting by status puts failures first, then pending videos, then the rest. */
  var STATUS_ORDER = { failed: 0, pending: 1, ok: 2, "skipped-complete": 2 };
  /* Decimals of a second of a #t= link and of a keyframe's time shown. */
  var LINK_DIGITS = 3, TIME_DIGITS = 2;

  function header(D, counts) {
    VC.heading(D.title || "Batch", [
      VC.plural(counts.videos || 0, "videos"),
      D.model ? "model " + D.model : null,
      D.method ? "method " + D.method : null,
      D.prompts && D.prompts.length ? "prompts: " + D.prompts.map(function (p) {
        return "“" + p + "”"; }).join(", ") : null,
      D.updated_at ? "updated " + D.updated_at : null,
    ]);
    var banner = document.getElementById("state");
    if (D.finished) {
      banner.textContent = "Batch finished.";
      banner.className = "vc-state vc-state-done";
    } else {
      banner.textContent = "Batch in progress: " + (counts.pending || 0) + " video(s) pending. " +
        "Reload the page to see newer results.";
      banner.className = "vc-state vc-state-running";
    }
  }

  function countCards(counts) {
    var cards = document.getElementById("counts");
    [["videos", counts.videos], ["ok", counts.ok], ["complete before", counts.skipped_complete],
      ["failed", counts.failed], ["pending", counts.pending]].forEach(function (c) {
      if (c[0] === "complete before" && !c[1]) return;
      cards.appendChild(VC.card(c[0], VC.isNum(c[1]) ? String(c[1]) : "0",
        c[0] === "failed" && c[1]));
    });
  }

  /* A link to a video's page (at time t, unless null), or plain text without one. */
  function reportLink(row, t, label) {
    if (!row.report) return el("span", { text: label });
    return el("a", { href: row.report + (t === null ? "" : "#t=" + t.toFixed(LINK_DIGITS)),
      text: label });
  }

  function failuresTable(rows) {
    var failed = rows.filter(function (r) { return r.status === "failed"; });
    if (!failed.length) return;
    document.getElementById("failures-section").hidden = false;
    new VC.Table({
      table: document.getElementById("failures"), rows: failed.slice(), noun: "failures",
      count: document.getElementById("failures-count"), pageSize: FAILURES_PER_PAGE,
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

  /* The video's first keyframe as a thumbnail, a link to its page at that time. */
  function thumbCell(r) {
    if (!r.thumb) return el("span", { class: "vc-thumb vc-noimg" });
    var img = el("img", { src: r.thumb, alt: "", loading: "lazy", class: "vc-thumb" });
    return r.report ? el("a", { href: r.report + "#t=" + (r.keyframes[0] || 0).toFixed(LINK_DIGITS),
      tabindex: "-1" }, [img]) : img;
  }

  function nameCell(r) {
    var box = el("div", { class: "vc-name" }, [reportLink(r, null, r.name)]);
    if (r.status === "failed") {
      box.appendChild(el("div", { class: "vc-error-text" }, [
        el("code", { text: r.error_type }), " " + r.error]));
    }
    return box;
  }

  function keyframesCell(r) {
    var box = el("div", { class: "vc-times" });
    r.keyframes.forEach(function (t, i) {
      box.appendChild(reportLink(r, t, VC.clock(t, TIME_DIGITS)));
      if (i < r.keyframes.length - 1) box.appendChild(document.createTextNode(" "));
    });
    return box;
  }

  function videosTable(rows) {
    return new VC.Table({
      table: document.getElementById("videos"), rows: rows, noun: "videos",
      pageSize: VIDEOS_PER_PAGE,
      count: document.getElementById("shown"), pager: document.getElementById("pager"),
      sortKey: "peak_target_score", desc: true,
      columns: [
        { key: "thumb", label: "", sortable: false, cell: thumbCell },
        { key: "name", label: "video", cell: nameCell },
        { key: "status", label: "status", value: function (r) { return STATUS_ORDER[r.status]; },
          cell: function (r) { return VC.statusBadge(r.status, r.status); } },
        { key: "target", label: "class" },
        { key: "peak_target_score", label: "peak score", num: true, cell: function (r) {
          return VC.num(r.peak_target_score); } },
        { key: "peak_attribution", label: "peak attribution", num: true, cell: function (r) {
          return VC.num(r.peak_attribution); } },
        { key: "segment_share", label: "in segments", num: true, cell: function (r) {
          return VC.pct(r.segment_share); } },
        { key: "keyframes", label: "keyframes", value: function (r) {
          return r.keyframes.length ? r.keyframes[0] : null; }, cell: keyframesCell },
      ],
    });
  }

  /* A moment's link to its video's page at its time, or plain text without a page. */
  function momentLink(m, node) {
    if (!m.report) return node;
    return el("a", { href: m.report + "#t=" + m.time_s.toFixed(LINK_DIGITS) }, [node]);
  }

  /* A prompt search's ranked moments (batch --prompt): every video's keyframes. */
  function momentsTable(moments) {
    if (!moments.length) return;
    document.getElementById("moments-section").hidden = false;
    new VC.Table({
      table: document.getElementById("moments"), rows: moments.slice(), noun: "moments",
      count: document.getElementById("moments-count"), pageSize: MOMENTS_PER_PAGE,
      pager: document.getElementById("moments-pager"), sortKey: "rank",
      columns: [
        { key: "rank", label: "rank", num: true },
        { key: "image", label: "", sortable: false, cell: function (m) {
          if (!m.image) return el("span", { class: "vc-thumb vc-noimg" });
          return momentLink(m, el("img", { src: m.image, alt: "", loading: "lazy",
            class: "vc-thumb" }));
        } },
        { key: "video", label: "video", cell: function (m) {
          return momentLink(m, el("span", { text: m.video })); } },
        { key: "time_s", label: "time", num: true, cell: function (m) {
          return momentLink(m, el("span", { text: VC.clock(m.time_s, TIME_DIGITS) })); } },
        { key: "target_score", label: "score", num: true, cell: function (m) {
          return VC.num(m.target_score); } },
        { key: "attribution", label: "attribution", num: true, cell: function (m) {
          return VC.num(m.attribution); } },
      ],
    });
  }

  function options(select, label, values) {
    select.appendChild(el("option", { value: "", text: label }));
    values.forEach(function (v) { select.appendChild(el("option", { value: v, text: v })); });
  }

  /* The class and status menus and the search box, which filter the videos' table. */
  function filters(rows, table) {
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
  }

  var D = VC.data();
  var rows = D.rows || [];
  var counts = D.counts || {};
  header(D, counts);
  countCards(counts);
  failuresTable(rows);
  momentsTable(D.moments || []);
  filters(rows, videosTable(rows));
  VC.ready();
})();
