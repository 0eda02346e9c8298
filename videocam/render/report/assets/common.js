/* videocam review pages: helpers shared by the video, batch and evaluation pages.
 *
 * Every string that comes from the data (file names, class names, tags, error messages) goes
 * into the page through textContent or an attribute set with setAttribute: never as markup.
 */
"use strict";

var VC = (function () {
  function data() {
    var node = document.getElementById("vc-data");
    return JSON.parse(node.textContent);
  }

  /* An element: el("td", {class: "num", title: text}, [child, "text", ...]). */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") node.textContent = String(value);
        else if (key === "href" || key === "src") setLink(node, key, value);
        else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  /* Links and sources in the data are relative paths the page's writer made. The browser's own
   * URL parser decides (it forgives what a pattern would miss: "java\tscript:", " //host",
   * "\\host"): anything that resolves to another scheme or another host is refused. */
  function setLink(node, name, value) {
    var text = String(value), url;
    try {
      url = new URL(text, document.baseURI);
    } catch (e) {
      return;
    }
    if (url.protocol !== location.protocol || url.host !== location.host) return;
    node.setAttribute(name, text);
  }

  function bytes(b64) {
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function f32(b64) { return new Float32Array(bytes(b64)); }
  function f64(b64) { return new Float64Array(bytes(b64)); }
  function i32(b64) { return new Int32Array(bytes(b64)); }

  function isNum(x) { return typeof x === "number" && isFinite(x); }

  function num(x, digits) {
    if (!isNum(x)) return "–";
    return x.toFixed(digits === undefined ? 3 : digits);
  }
  function pct(x) { return isNum(x) ? (100 * x).toFixed(1) + " %" : "–"; }

  /* Every time the pages show, in one format: 7.44 -> "0:07.44", 75.25 -> "1:15.25",
   * 3725.5 -> "1:02:05.50" (``digits`` decimals of a second, default 2). The images, the
   * timeline plot and the annotated clip write times the same way
   * (videocam.render.timefmt.clock). */
  function clock(s, digits) {
    if (!isNum(s)) return "–";
    var d = digits === undefined ? 2 : digits;
    var scale = Math.pow(10, d);
    // Rounded once, in units of the last digit, so 59.9996 reads 1:00.000, never 0:60.000.
    var units = Math.round(Math.abs(s) * scale);
    var whole = Math.floor(units / scale), frac = String(units - whole * scale);
    while (frac.length < d) frac = "0" + frac;
    var h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), sec = whole % 60;
    return (s < 0 && units > 0 ? "-" : "") + (h ? h + ":" + (m < 10 ? "0" : "") : "") + m +
      ":" + (sec < 10 ? "0" : "") + sec + (d > 0 ? "." + frac : "");
  }

  /* What a line through a curve needs at one point per pixel column: the samples [i0, i1) with
   * a finite value, cut into runs at NaN (gaps), keeping in each column (the floor of xOf(i),
   * in the canvas' own pixels) only its first, lowest, highest and last sample, in time order.
   * A line through these covers the pixels a line through every sample would, so no peak is
   * lost however many frames share a column; where columns hold one sample or none it is that
   * line itself. Returns the runs, each an array of sample indices. */
  function columnPath(values, i0, i1, xOf) {
    var runs = [], run = [];
    var col = NaN, first = -1, lo = -1, hi = -1, last = -1;
    function flush() {
      if (first < 0) return;
      var keep = [first, lo, hi, last].sort(function (a, b) { return a - b; });
      for (var k = 0; k < keep.length; k++) {
        if (!k || keep[k] !== keep[k - 1]) run.push(keep[k]);
      }
      first = -1;
    }
    for (var i = i0; i < i1; i++) {
      var v = values[i];
      if (v !== v) {
        flush();
        if (run.length) runs.push(run);
        run = [];
        continue;
      }
      var c = Math.floor(xOf(i));
      if (first < 0 || c !== col) {
        flush();
        col = c;
        first = lo = hi = i;
      }
      if (v < values[lo]) lo = i;
      if (v > values[hi]) hi = i;
      last = i;
    }
    flush();
    if (run.length) runs.push(run);
    return runs;
  }

  /* First index i with arr[i] >= x (arr sorted). */
  function lowerBound(arr, x) {
    var lo = 0, hi = arr.length;
    while (lo < hi) {
      var mid = (lo + hi) >>> 1;
      if (arr[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /* A sortable, filterable, paged table over plain row objects.
   *   columns: [{key, label, num, value(row) -> sort key, cell(row) -> Node|string, sortable}]
   *   group(row) -> number: rows of a lower group come first whatever the sort. */
  function Table(opts) {
    this.table = opts.table;
    this.columns = opts.columns;
    this.rows = opts.rows;
    this.pageSize = opts.pageSize || 0;
    this.pager = opts.pager || null;
    this.count = opts.count || null;
    this.group = opts.group || null;
    this.filter = function () { return true; };
    this.sortKey = opts.sortKey || null;
    this.desc = !!opts.desc;
    this.page = 0;
    this.noun = opts.noun || "rows";
    this.rows.forEach(function (row, i) { row.__order = i; });
    this._head();
    this.refresh();
  }
  Table.prototype._head = function () {
    var self = this;
    var tr = el("tr");
    this.headers = {};
    this.columns.forEach(function (col) {
      var th = el("th", { scope: "col", class: col.num ? "num" : null });
      if (col.sortable === false) {
        th.textContent = col.label;
      } else {
        var button = el("button", { type: "button", class: "vc-sort", "data-key": col.key }, [
          col.label,
        ]);
        button.addEventListener("click", function () { self.sortBy(col.key); });
        th.appendChild(button);
        self.headers[col.key] = th;
      }
      tr.appendChild(th);
    });
    var thead = el("thead", null, [tr]);
    this.tbody = el("tbody");
    this.table.textContent = "";
    this.table.appendChild(thead);
    this.table.appendChild(this.tbody);
  };
  Table.prototype.sortBy = function (key) {
    if (this.sortKey === key) this.desc = !this.desc;
    else {
      this.sortKey = key;
      var col = this.columns.filter(function (c) { return c.key === key; })[0];
      this.desc = !!(col && col.num);
    }
    this.page = 0;
    this.refresh();
  };
  Table.prototype.setFilter = function (fn) {
    this.filter = fn;
    this.page = 0;
    this.refresh();
  };
  Table.prototype.sorted = function () {
    var self = this;
    var col = this.columns.filter(function (c) { return c.key === self.sortKey; })[0];
    var rows = this.rows.filter(this.filter);
    var keyOf = col ? col.value || function (r) { return r[col.key]; } : null;
    var keyed = rows.map(function (r) {
      var k = keyOf ? keyOf(r) : null;
      if (typeof k === "number" && !isFinite(k)) k = null;
      if (k === "" || k === undefined) k = null;
      return { row: r, key: k, group: self.group ? self.group(r) : 0 };
    });
    var sign = this.desc ? -1 : 1;
    keyed.sort(function (x, y) {
      if (x.group !== y.group) return x.group - y.group;
      if (x.key !== y.key) {
        if (x.key === null) return 1; // missing values last, whichever the direction
        if (y.key === null) return -1;
        if (typeof x.key === "number" && typeof y.key === "number") return sign * (x.key - y.key);
        var c = String(x.key).localeCompare(String(y.key), undefined, { numeric: true });
        if (c) return sign * c;
      }
      return x.row.__order - y.row.__order;
    });
    return keyed.map(function (k) { return k.row; });
  };
  Table.prototype.refresh = function () {
    var self = this;
    var rows = this.sorted();
    var pages = this.pageSize ? Math.max(1, Math.ceil(rows.length / this.pageSize)) : 1;
    if (this.page >= pages) this.page = pages - 1;
    var first = this.pageSize ? this.page * this.pageSize : 0;
    var shown = this.pageSize ? rows.slice(first, first + this.pageSize) : rows;
    var body = document.createDocumentFragment();
    shown.forEach(function (row) {
      var tr = el("tr", { class: row.__class || null });
      self.columns.forEach(function (col) {
        var content = col.cell ? col.cell(row) : row[col.key];
        var td = el("td", { class: col.num ? "num" : null });
        if (content instanceof Node) td.appendChild(content);
        else td.textContent = content === null || content === undefined ? "" : String(content);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    this.tbody.textContent = "";
    this.tbody.appendChild(body);
    Object.keys(this.headers).forEach(function (key) {
      var th = self.headers[key];
      var state = key === self.sortKey ? (self.desc ? "descending" : "ascending") : "none";
      th.setAttribute("aria-sort", state);
    });
    if (this.count) {
      var total = this.rows.length;
      var text = rows.length === total ? plural(total, this.noun)
        : rows.length + " of " + plural(total, this.noun);
      if (this.pageSize && rows.length > this.pageSize) {
        text += " · showing " + (first + 1) + "–" + (first + shown.length);
      }
      this.count.textContent = text;
    }
    if (this.pager) this._pager(pages);
  };
  Table.prototype._pager = function (pages) {
    var self = this;
    this.pager.textContent = "";
    if (pages <= 1) return;
    function go(page) { self.page = page; self.refresh(); }
    var prev = el("button", { type: "button", "data-page": "prev" }, ["‹ Previous"]);
    prev.disabled = this.page === 0;
    prev.addEventListener("click", function () { go(self.page - 1); });
    var next = el("button", { type: "button", "data-page": "next" }, ["Next ›"]);
    next.disabled = this.page >= pages - 1;
    next.addEventListener("click", function () { go(self.page + 1); });
    var label = el("span", { class: "vc-page" }, ["page " + (this.page + 1) + " of " + pages]);
    this.pager.appendChild(prev);
    this.pager.appendChild(label);
    this.pager.appendChild(next);
  };

  /* "1 video", "2 videos" (nouns given in the plural). */
  function plural(n, noun) {
    return n + " " + (n === 1 ? noun.replace(/s$/, "") : noun);
  }

  /* A definition list from [[term, value], ...]; values are strings or Nodes. */
  function dl(pairs) {
    var list = el("dl", { class: "vc-dl" });
    pairs.forEach(function (pair) {
      if (pair[1] === null || pair[1] === undefined || pair[1] === "") return;
      list.appendChild(el("dt", { text: pair[0] }));
      var dd = el("dd");
      if (pair[1] instanceof Node) dd.appendChild(pair[1]); else dd.textContent = String(pair[1]);
      list.appendChild(dd);
    });
    return list;
  }

  function text(id, value) {
    var node = document.getElementById(id);
    if (node) node.textContent = value;
    return node;
  }

  return {
    data: data, el: el, setLink: setLink, f32: f32, f64: f64, i32: i32, isNum: isNum,
    num: num, pct: pct, clock: clock, columnPath: columnPath, lowerBound: lowerBound,
    Table: Table, dl: dl, text: text, plural: plural,
  };
})();
