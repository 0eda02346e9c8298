/* videocam review pages: helpers shared by the video, batch and evaluation pages, in the one
 * global name of a page's script, VC. page.py puts this file first in every page's script; the
 * others add to VC (table.js: VC.Table; video-*.js: VC.video) or run the page (KIND.js).
 *
 * Every string that comes from the data (file names, class names, tags, error messages) goes
 * into the page through textContent or an attribute set with setAttribute: never as markup.
 */
/* exported VC */
var VC = (function () {
  "use strict";

  /* What a page shows for a number it does not have. */
  var MISSING = "–";
  /* Between the parts of a line of facts (a subtitle, the player's readout). */
  var SEPARATOR = " · ";
  /* Decimals of VC.num and of VC.clock's seconds unless a caller asks for others. */
  var NUM_DIGITS = 3, CLOCK_DIGITS = 2;
  var SECONDS_PER_MINUTE = 60, SECONDS_PER_HOUR = 3600;

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
    var link = String(value), url;
    try {
      url = new URL(link, document.baseURI);
    } catch {
      return;
    }
    if (url.protocol !== location.protocol || url.host !== location.host) return;
    node.setAttribute(name, link);
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
    if (!isNum(x)) return MISSING;
    return x.toFixed(digits === undefined ? NUM_DIGITS : digits);
  }
  function pct(x) { return isNum(x) ? (100 * x).toFixed(1) + " %" : MISSING; }

  /* Every time the pages show, in one format: 7.44 -> "0:07.44", 75.25 -> "1:15.25",
   * 3725.5 -> "1:02:05.50" (``digits`` decimals of a second, default 2). The images, the
   * timeline plot and the annotated clip write times the same way
   * (videocam.render.timefmt.clock). */
  function clock(s, digits) {
    if (!isNum(s)) return MISSING;
    var d = digits === undefined ? CLOCK_DIGITS : digits;
    var scale = Math.pow(10, d);
    // Rounded once, in units of the last digit, so 59.9996 reads 1:00.000, never 0:60.000.
    var units = Math.round(Math.abs(s) * scale);
    var whole = Math.floor(units / scale), frac = String(units - whole * scale);
    while (frac.length < d) frac = "0" + frac;
    var h = Math.floor(whole / SECONDS_PER_HOUR);
    var m = Math.floor((whole % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE);
    var sec = whole % SECONDS_PER_MINUTE;
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

  /* The page's title and, under it, its facts (the ones that are not null), one line. */
  function heading(title, facts) {
    text("title", title);
    text("subtitle", facts.filter(Boolean).join(SEPARATOR));
  }

  /* One of the cards of counts at the top of the batch and evaluation pages. */
  function card(label, value, bad) {
    return el("div", { class: "vc-card" + (bad ? " vc-card-bad" : "") }, [
      el("span", { class: "vc-card-n", text: value }),
      el("span", { class: "vc-card-label", text: label }),
    ]);
  }

  /* A video's status (ok, failed, pending...) as a badge; its class from the status' letters. */
  function statusBadge(status, label, title) {
    return el("span", { class: "vc-status vc-status-" + String(status || "").replace(/[^a-z-]/g, ""),
      title: title || null, text: label });
  }

  /* Tells a reader (and the tests) that the page's script ran to its end. */
  function ready() { document.body.setAttribute("data-ready", "true"); }

  return {
    MISSING: MISSING, SEPARATOR: SEPARATOR,
    data: data, el: el, setLink: setLink, f32: f32, f64: f64, i32: i32, isNum: isNum,
    num: num, pct: pct, clock: clock, columnPath: columnPath, lowerBound: lowerBound,
    dl: dl, text: text, plural: plural, heading: heading, card: card, statusBadge: statusBadge,
    ready: ready,
  };
})();
