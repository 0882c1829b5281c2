// ReplayInspector view: summary cards, a fill strip (filled rows, write cursor, sampled rows), per-key
// statistics, a priority histogram, and one page of stored items fetched on demand.
// Synced fields (rlbench/widgets/replay_inspector.py): title, summary, stats, histogram, page, sample,
// error, page_size. Requests go to the kernel as custom messages: {type: "page"|"sample"|"refresh"}.
// What each part shows is worked out in lib/replay_view.js (pure, node-tested); this file builds the
// DOM from those descriptions and wires the events.
import { h, isOffline } from "./lib/escape.js";
import { pageOf } from "./lib/replay_data.js";
import { clampIndex } from "./lib/indices.js";
import { fitCanvas, fitWidth, paintShapes, watchWidth } from "./lib/canvas.js";
import { histogramView, pageView, pagerTarget, pendingText, replayHeader, sampleRequest } from "./lib/replay_view.js";
import { statsRows, stripClickPage, stripLegend, stripShapes, summaryCards } from "./lib/replay_view.js";

const STRIP_HEIGHT = 22;
const HIST_HEIGHT = 110;
const HIST_WIDTH = 300;
const PAGER = [["first", "«", "first page"], ["prev", "‹", "previous page"], ["next", "›", "next page"], ["last", "»", "last page"]];

// ------------------------------------------------------------------ DOM skeleton
function toolbarDom() {
  const batchInput = h("input", { class: "rlb-rp-batch", type: "number", min: "1", value: "32", "aria-label": "batch size" });
  const sampleBtn = h("button", { class: "rlb-button rlb-rp-sample" }, "Sample");
  const refreshBtn = h("button", { class: "rlb-button rlb-rp-refresh" }, "Refresh");
  const status = h("span", { class: "rlb-note rlb-rp-status" });
  const el = h("div", { class: "rlb-toolbar" }, sampleBtn, h("span", { class: "rlb-note" }, "batch"), batchInput, refreshBtn, status);
  return { el, batchInput, sampleBtn, refreshBtn, status };
}

function pagerDom() {
  const nav = Object.fromEntries(PAGER.map(([action, label, tip]) => [action, h("button", { class: "rlb-button rlb-rp-nav", title: tip }, label)]));
  const pageInfo = h("span", { class: "rlb-note rlb-rp-pageinfo" });
  const gotoInput = h("input", { class: "rlb-rp-goto", type: "number", min: "0", placeholder: "index", "aria-label": "go to index" });
  const el = h("div", { class: "rlb-toolbar rlb-rp-pager" }, nav.first, nav.prev, pageInfo, nav.next, nav.last, h("span", { class: "rlb-note" }, "go to"), gotoInput);
  return { el, nav, pageInfo, gotoInput };
}

/** The whole view; returns the elements the event handlers and redraws touch. */
function buildDom(offline) {
  const ui = { title: h("span", { class: "rlb-title" }), subtitle: h("span", { class: "rlb-subtitle" }) };
  ui.cards = h("div", { class: "rlb-rp-cards" });
  ui.strip = h("canvas", { class: "rlb-rp-strip", title: "stored rows (click to open the page)" });
  ui.stripLegend = h("div", { class: "rlb-note rlb-rp-legend" });
  const toolbar = toolbarDom();
  ui.statsBody = h("tbody");
  const statsTable = h("table", { class: "rlb-table rlb-rp-stats" },
    h("thead", {}, h("tr", {}, ["key", "dtype", "shape", "mean", "std", "min", "max", "non-finite"].map((c) => h("th", {}, c)))),
    ui.statsBody);
  ui.hist = h("canvas", { class: "rlb-rp-hist" });
  ui.histCaption = h("div", { class: "rlb-note" });
  ui.histBox = h("div", { class: "rlb-rp-histbox" }, h("div", { class: "rlb-rp-section" }, "priorities"), ui.hist, ui.histCaption);
  ui.pageHead = h("thead");
  ui.pageBody = h("tbody");
  const pager = pagerDom();
  const offlineNote = offline
    ? h("div", { class: "rlb-note rlb-warn rlb-rp-offline" }, "Saved copy: summary, statistics and the first page only; paging, sampling and refresh need a running kernel.")
    : null;
  ui.root = h("div", { class: "rlb-root rlb-replay-inspector" },
    h("div", { class: "rlb-header" }, ui.title, ui.subtitle),
    ui.cards, h("div", { class: "rlb-rp-stripbox" }, ui.strip, ui.stripLegend), toolbar.el, offlineNote,
    h("div", { class: "rlb-rp-middle" }, h("div", { class: "rlb-rp-statsbox" }, h("div", { class: "rlb-rp-section" }, "per-key statistics"), statsTable), ui.histBox),
    h("div", { class: "rlb-rp-section" }, "stored items"), pager.el,
    h("div", { class: "rlb-rp-pagebox" }, h("table", { class: "rlb-table rlb-rp-page" }, ui.pageHead, ui.pageBody)));
  return { ...ui, ...toolbar, ...pager };
}

// ------------------------------------------------------------------ redraws from the synced fields
function drawCards(ui, model) {
  const summary = model.get("summary");
  const { title, subtitle } = replayHeader(model.get("title"), summary);
  ui.title.textContent = title;
  ui.subtitle.textContent = subtitle;
  ui.cards.replaceChildren(...summaryCards(summary).map((c) => h("div", { class: "rlb-rp-card" },
    h("div", { class: "rlb-rp-card-label" }, c.label), h("div", { class: "rlb-rp-card-value" }, c.value),
    c.extra ? h("div", { class: "rlb-note" }, c.extra) : null)));
}

function drawStrip(ui, model) {
  const sample = model.get("sample") || {};
  const width = fitWidth(ui.root.clientWidth, 200, 22);
  paintShapes(fitCanvas(ui.strip, width, STRIP_HEIGHT), stripShapes(model.get("summary"), sample, width, STRIP_HEIGHT));
  ui.stripLegend.textContent = stripLegend(sample);
  ui.root.dataset.sampled = sample.indices ? String(sample.indices.length) : "0";
}

function drawStats(ui, model) {
  const rows = statsRows(model.get("stats")).map((r) => h("tr", { "data-key": r.name },
    h("th", {}, r.name), ...r.cells.map((c) => h("td", { class: c.cls }, c.text))));
  ui.statsBody.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: "8", class: "rlb-note" }, "no numeric data"))]));
}

function drawHistogram(ui, model) {
  const view = histogramView(model.get("histogram"), HIST_WIDTH, HIST_HEIGHT);
  ui.histBox.hidden = !view;
  if (!view) return;
  const ctx = fitCanvas(ui.hist, HIST_WIDTH, HIST_HEIGHT);
  ctx.clearRect(0, 0, HIST_WIDTH, HIST_HEIGHT);
  paintShapes(ctx, view.shapes);
  ui.histCaption.textContent = view.caption;
}

function drawPage(ui, model, offline) {
  const view = pageView(model.get("page"), model.get("sample"));
  ui.pageHead.replaceChildren(h("tr", {}, view.columns.map((c) => h("th", {}, c))));
  const body = view.rows.map((r) => h("tr", { class: r.cls, "data-index": String(r.index), title: r.title },
    r.cells.map((c, k) => h(k === 0 ? "th" : "td", { class: k === 0 ? null : "rlb-mono" }, c))));
  ui.pageBody.replaceChildren(...(body.length ? body : [h("tr", {}, h("td", { class: "rlb-note" }, "the buffer is empty"))]));
  ui.pageInfo.textContent = view.info;
  if (!offline) {
    ui.nav.first.disabled = ui.nav.prev.disabled = view.atFirst;
    ui.nav.next.disabled = ui.nav.last.disabled = view.atLast;
  }
  ui.root.dataset.page = String(view.index);
}

function drawError(ui, model) {
  const err = model.get("error");
  ui.status.textContent = err || "";
  ui.status.classList.toggle("rlb-warn", Boolean(err));
}

// ------------------------------------------------------------------ render: wiring only
function render({ model, el }) {
  const offline = isOffline(model);
  const ui = buildDom(offline);
  el.replaceChildren(ui.root);
  if (offline) for (const b of [ui.sampleBtn, ui.refreshBtn, ...Object.values(ui.nav), ui.gotoInput, ui.batchInput]) b.disabled = true;

  let pending = false;
  const request = (msg) => {
    if (offline) return;
    pending = true;
    ui.status.textContent = pendingText(msg.type);
    model.send(msg);
  };
  const goPage = (k) => request({ type: "page", page: clampIndex(k, (model.get("page") || {}).pages) });
  for (const [action, button] of Object.entries(ui.nav)) button.addEventListener("click", () => goPage(pagerTarget(action, model.get("page"))));
  ui.gotoInput.addEventListener("change", () => {
    const i = Number(ui.gotoInput.value);
    if (Number.isFinite(i)) goPage(pageOf(i, model.get("page_size") || 50));
  });
  ui.sampleBtn.addEventListener("click", () => request(sampleRequest(ui.batchInput.value)));
  ui.refreshBtn.addEventListener("click", () => request({ type: "refresh" }));
  ui.strip.addEventListener("click", (e) => {
    if (offline) return;
    const rect = ui.strip.getBoundingClientRect();
    const k = stripClickPage(e.clientX - rect.left, rect.width, model.get("summary"), model.get("page_size"));
    if (k !== null) goPage(k);
  });

  const draw = (...parts) => () => { for (const part of parts) part(ui, model, offline); };
  const done = () => { if (pending) { pending = false; ui.status.textContent = ""; } drawError(ui, model); };
  const handlers = {
    "change:summary": draw(drawCards, drawStrip),
    "change:title": draw(drawCards),
    "change:stats": draw(drawStats),
    "change:histogram": draw(drawHistogram),
    "change:page": draw(drawPage, done),
    "change:sample": draw(drawStrip, drawPage, done),
    "change:error": () => { pending = false; drawError(ui, model); },
  };
  for (const [name, fn] of Object.entries(handlers)) model.on(name, fn);
  const unwatch = watchWidth(ui.root, () => ui.root.clientWidth, draw(drawStrip));

  draw(drawCards, drawStrip, drawStats, drawHistogram, drawPage, drawError)();
  return () => {
    unwatch();
    for (const [name, fn] of Object.entries(handlers)) model.off(name, fn);
  };
}

export default { render };
