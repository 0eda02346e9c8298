/* videocam review pages: VC.Table, the sortable, filterable, paged table of the batch page's
 * videos and failures, the evaluation page's videos and the video page's segments. */
(function () {
  "use strict";
  var el = VC.el;

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
      var text = rows.length === total ? VC.plural(total, this.noun)
        : rows.length + " of " + VC.plural(total, this.noun);
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

  VC.Table = Table;
})();
