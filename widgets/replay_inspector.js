// ReplayInspector view: summary cards, a fill strip (filled rows, write cursor, sampled rows), per-key
// statistics, a priority histogram, and one page of stored items fetched on demand.
// Synced fields (rlbench/widgets/replay_inspector.py): title, summary, stats, histogram, page, sample,
// error, page_size. Requests go to the kernel as custom messages: {type: "page"|"sample"|"refresh"}.
import { h, isOffline } from "./lib/escape.js";
import { formatNumber, formatShape } from "./lib/format.js";
import { stripIndex, pageOf, sampledIn, histogramBars, formatPercent, sampledRows } from "./lib/replay_data.js";

const STRIP_HEIGHT = 22;
const HIST_HEIGHT = 110;

function fitCanvas(canvas, width, height) {
  const r = globalThis.devicePixelRatio || 1;
  canvas.width = Math.round(width * r);
  canvas.height = Math.round(height * r);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(r, 0, 0, r, 0, 0);
  return ctx;
}

function stat(x) {
  if (x === null || x === undefined) return "–";
  return typeof x === "string" ? x : formatNumber(x);
}

function render({ model, el }) {
  const offline = isOffline(model);
  const title = h("span", { class: "rlb-title" });
  const subtitle = h("span", { class: "rlb-subtitle" });
  const cards = h("div", { class: "rlb-rp-cards" });
  const strip = h("canvas", { class: "rlb-rp-strip", title: "stored rows (click to open the page)" });
  const stripLegend = h("div", { class: "rlb-note rlb-rp-legend" });
  const batchInput = h("input", { class: "rlb-rp-batch", type: "number", min: "1", value: "32", "aria-label": "batch size" });
  const sampleBtn = h("button", { class: "rlb-button rlb-rp-sample" }, "Sample");
  const refreshBtn = h("button", { class: "rlb-button rlb-rp-refresh" }, "Refresh");
  const status = h("span", { class: "rlb-note rlb-rp-status" });
  const toolbar = h("div", { class: "rlb-toolbar" }, sampleBtn, h("span", { class: "rlb-note" }, "batch"), batchInput, refreshBtn, status);
  const statsBody = h("tbody");
  const statsTable = h("table", { class: "rlb-table rlb-rp-stats" },
    h("thead", {}, h("tr", {}, ["key", "dtype", "shape", "mean", "std", "min", "max", "non-finite"].map((c) => h("th", {}, c)))),
    statsBody);
  const hist = h("canvas", { class: "rlb-rp-hist" });
  const histCaption = h("div", { class: "rlb-note" });
  const histBox = h("div", { class: "rlb-rp-histbox" }, h("div", { class: "rlb-rp-section" }, "priorities"), hist, histCaption);
  const pageHead = h("thead");
  const pageBody = h("tbody");
  const pageInfo = h("span", { class: "rlb-note rlb-rp-pageinfo" });
  const btn = (label, tip) => h("button", { class: "rlb-button rlb-rp-nav", title: tip }, label);
  const first = btn("«", "first page"), prev = btn("‹", "previous page"), next = btn("›", "next page"), last = btn("»", "last page");
  const gotoInput = h("input", { class: "rlb-rp-goto", type: "number", min: "0", placeholder: "index", "aria-label": "go to index" });
  const pager = h("div", { class: "rlb-toolbar rlb-rp-pager" }, first, prev, pageInfo, next, last, h("span", { class: "rlb-note" }, "go to"), gotoInput);
  const offlineNote = offline
    ? h("div", { class: "rlb-note rlb-warn rlb-rp-offline" }, "Saved copy: summary, statistics and the first page only; paging, sampling and refresh need a running kernel.")
    : null;
  const root = h("div", { class: "rlb-root rlb-replay-inspector" },
    h("div", { class: "rlb-header" }, title, subtitle),
    cards, h("div", { class: "rlb-rp-stripbox" }, strip, stripLegend), toolbar, offlineNote,
    h("div", { class: "rlb-rp-middle" }, h("div", { class: "rlb-rp-statsbox" }, h("div", { class: "rlb-rp-section" }, "per-key statistics"), statsTable), histBox),
    h("div", { class: "rlb-rp-section" }, "stored items"), pager,
    h("div", { class: "rlb-rp-pagebox" }, h("table", { class: "rlb-table rlb-rp-page" }, pageHead, pageBody)));
  el.replaceChildren(root);
  if (offline) for (const b of [sampleBtn, refreshBtn, first, prev, next, last, gotoInput, batchInput]) b.disabled = true;

  let pending = false;
  function request(msg) {
    if (offline) return;
    pending = true;
    status.textContent = msg.type === "sample" ? "sampling…" : msg.type === "refresh" ? "reading the buffer…" : "loading…";
    model.send(msg);
  }

  // ------------------------------------------------------------------ drawing
  function drawCards() {
    const s = model.get("summary") || {};
    title.textContent = model.get("title") || "Replay buffer";
    subtitle.textContent = [s.storage, s.sampler, s.writer].filter(Boolean).join(" · ");
    const card = (label, value, extra) => h("div", { class: "rlb-rp-card" },
      h("div", { class: "rlb-rp-card-label" }, label), h("div", { class: "rlb-rp-card-value" }, value),
      extra ? h("div", { class: "rlb-note" }, extra) : null);
    const items = [
      card("stored", `${(s.length ?? 0).toLocaleString()}`, `of ${(s.capacity ?? 0).toLocaleString()} · ${formatPercent(s.fill)}`),
      card("write cursor", `row ${s.write_cursor ?? 0}`, `of ${s.rows ?? 0} rows${s.items_per_row > 1 ? ` × ${s.items_per_row}` : ""}`),
      card("storage shape", formatShape(s.shape || []), `ndim ${s.ndim ?? 1}`),
    ];
    if (s.batch_size != null) items.push(card("batch size", String(s.batch_size)));
    if (s.prioritized) items.push(card("prioritized", `α ${stat(s.alpha)} · β ${stat(s.beta)}`, s.max_priority != null ? `max p ${stat(s.max_priority)}` : null));
    cards.replaceChildren(...items);
  }

  function drawStrip() {
    const s = model.get("summary") || {};
    const smp = model.get("sample") || {};
    const width = Math.max(200, Math.floor((root.clientWidth || 720) - 22));
    const ctx = fitCanvas(strip, width, STRIP_HEIGHT);
    const rows = Math.max(1, s.rows || 1);
    ctx.fillStyle = "#e9ecef";
    ctx.fillRect(0, 6, width, STRIP_HEIGHT - 8);
    ctx.fillStyle = "#9ecae1";
    ctx.fillRect(0, 6, (Math.min(s.len_rows || 0, rows) / rows) * width, STRIP_HEIGHT - 8);
    const hits = sampledRows(smp.indices, s.items_per_row || 1);
    ctx.fillStyle = "#d62728";
    for (const [row, count] of hits) {
      const x = ((row + 0.5) / rows) * width;
      ctx.globalAlpha = Math.min(1, 0.55 + 0.15 * count);
      ctx.fillRect(Math.round(x) - 1, 6, 2, STRIP_HEIGHT - 8);
    }
    ctx.globalAlpha = 1;
    // the write cursor: a dark triangle above the strip, where the next row goes
    const cx = ((s.write_cursor || 0) / rows) * width;
    ctx.fillStyle = "#222";
    ctx.beginPath(); ctx.moveTo(cx - 5, 0); ctx.lineTo(cx + 5, 0); ctx.lineTo(cx, 6); ctx.closePath(); ctx.fill();
    ctx.fillRect(Math.round(cx), 6, 1, STRIP_HEIGHT - 6);
    const sampled = smp.indices ? ` · red: the ${smp.indices.length} indices of the last sample (${smp.unique} distinct)` : "";
    stripLegend.textContent = `blue: stored rows · ▼ write cursor${sampled}`;
    root.dataset.sampled = smp.indices ? String(smp.indices.length) : "0";
  }

  function drawStats() {
    const rows = (model.get("stats") || []).map((st) => h("tr", { "data-key": st.name },
      h("th", {}, st.name), h("td", {}, st.dtype ?? ""), h("td", { class: "rlb-mono" }, st.shape ? formatShape(st.shape) : ""),
      ...[st.mean, st.std, st.min, st.max].map((v) => h("td", { class: "rlb-mono" }, stat(v))),
      h("td", { class: st.nonfinite ? "rlb-mono rlb-rp-bad" : "rlb-mono" }, String(st.nonfinite ?? 0))));
    statsBody.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: "8", class: "rlb-note" }, "no numeric data"))]));
  }

  function drawHistogram() {
    const hg = model.get("histogram") || {};
    histBox.hidden = !(hg.counts && hg.counts.length);
    if (histBox.hidden) return;
    const width = 300;
    const ctx = fitCanvas(hist, width, HIST_HEIGHT);
    ctx.clearRect(0, 0, width, HIST_HEIGHT);
    ctx.fillStyle = "#6baed6";
    for (const b of histogramBars(hg.counts, hg.edges, width, HIST_HEIGHT - 2)) ctx.fillRect(b.x, b.y, b.w, b.h);
    histCaption.textContent = `${hg.count} items · min ${stat(hg.min)} · mean ${stat(hg.mean)} · max ${stat(hg.max)}`;
  }

  function drawPage() {
    const p = model.get("page") || {};
    const smp = model.get("sample") || {};
    const hits = sampledIn(smp.indices, p.start ?? 0, p.stop ?? 0);
    pageHead.replaceChildren(h("tr", {}, (p.columns || []).map((c) => h("th", {}, c))));
    const perRow = p.items_per_row || 1;
    const body = (p.rows || []).map((cells, r) => {
      const index = (p.start ?? 0) + r;
      const count = hits.get(index) || 0;
      const newest = p.newest_row != null && Math.floor(index / perRow) === p.newest_row;
      const cls = [count ? "rlb-rp-hit" : "", newest ? "rlb-rp-newest" : ""].filter(Boolean).join(" ");
      return h("tr", { class: cls || null, "data-index": String(index), title: count ? `sampled ${count}×` : (newest ? "newest row" : null) },
        cells.map((c, k) => h(k === 0 ? "th" : "td", { class: k === 0 ? null : "rlb-mono" }, c)));
    });
    pageBody.replaceChildren(...(body.length ? body : [h("tr", {}, h("td", { class: "rlb-note" }, "the buffer is empty"))]));
    const pages = p.pages || 1;
    pageInfo.textContent = `items ${p.start ?? 0}–${Math.max(p.start ?? 0, (p.stop ?? 0) - 1)} of ${(p.total ?? 0).toLocaleString()} · page ${(p.index ?? 0) + 1} of ${pages.toLocaleString()}`;
    if (!offline) {
      first.disabled = prev.disabled = (p.index ?? 0) <= 0;
      next.disabled = last.disabled = (p.index ?? 0) >= pages - 1;
    }
    root.dataset.page = String(p.index ?? 0);
  }

  function drawError() {
    const err = model.get("error");
    status.textContent = err || "";
    status.classList.toggle("rlb-warn", Boolean(err));
  }

  // ------------------------------------------------------------------ events
  const goPage = (k) => request({ type: "page", page: Math.max(0, Math.min(k, ((model.get("page") || {}).pages || 1) - 1)) });
  first.addEventListener("click", () => goPage(0));
  prev.addEventListener("click", () => goPage(((model.get("page") || {}).index ?? 0) - 1));
  next.addEventListener("click", () => goPage(((model.get("page") || {}).index ?? 0) + 1));
  last.addEventListener("click", () => goPage(((model.get("page") || {}).pages || 1) - 1));
  gotoInput.addEventListener("change", () => {
    const i = Number(gotoInput.value);
    if (Number.isFinite(i)) goPage(pageOf(i, model.get("page_size") || 50));
  });
  sampleBtn.addEventListener("click", () => request({ type: "sample", batch_size: Math.max(1, Math.floor(Number(batchInput.value) || 32)) }));
  refreshBtn.addEventListener("click", () => request({ type: "refresh" }));
  strip.addEventListener("click", (e) => {
    if (offline) return;
    const s = model.get("summary") || {};
    const rect = strip.getBoundingClientRect();
    const index = stripIndex(e.clientX - rect.left, s.items_per_row || 1, Math.max(1, s.rows || 1), rect.width);
    if (index < (s.length || 0)) goPage(pageOf(index, model.get("page_size") || 50));
  });

  const done = () => { if (pending) { pending = false; status.textContent = ""; } drawError(); };
  const handlers = {
    "change:summary": () => { drawCards(); drawStrip(); },
    "change:title": drawCards,
    "change:stats": drawStats,
    "change:histogram": drawHistogram,
    "change:page": () => { drawPage(); done(); },
    "change:sample": () => { drawStrip(); drawPage(); done(); },
    "change:error": () => { pending = false; drawError(); },
  };
  for (const [name, fn] of Object.entries(handlers)) model.on(name, fn);
  let lastWidth = 0;
  const ro = typeof ResizeObserver !== "undefined" ? new ResizeObserver(() => {
    const w = root.clientWidth;
    if (Math.abs(w - lastWidth) > 4) { lastWidth = w; drawStrip(); }
  }) : null;
  if (ro) ro.observe(root);

  drawCards(); drawStrip(); drawStats(); drawHistogram(); drawPage(); drawError();
  return () => {
    if (ro) ro.disconnect();
    for (const [name, fn] of Object.entries(handlers)) model.off(name, fn);
  };
}

export default { render };
