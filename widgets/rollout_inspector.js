// RolloutInspector view: a frame, a timeline (slider, play/pause, arrow keys), the step's values and
// canvas plots of reward, episode return and a chosen key, all with a cursor at the current step.
// Synced fields (rlbench/widgets/rollout_inspector.py): title, meta, series, frames, frame_offsets,
// agent_frames, agent_frame_offsets, step, env. The raw frame and the agent's view (a tiled stack) are
// two panels side by side (lib/frame_panels.js), each with its own frame store. Everything is decoded once here; scrubbing never talks to the kernel.
// What is shown is worked out in lib/rollout_view.js and lib/playback.js (pure, node-tested); this
// file builds the DOM, applies those results and wires the events.
import { h } from "./lib/escape.js";
import { decodeOffsets, FrameStore } from "./lib/rollout_data.js";
import { clampIndex } from "./lib/indices.js";
import { drawCursor, drawPlot } from "./lib/plot_canvas.js";
import { fitCanvas, fitWidth, paintShapes, watchWidth } from "./lib/canvas.js";
import { decodeRollout, deriveEnv, frameCaption, initialPlotKey, orderSeries } from "./lib/rollout_view.js";
import { allDrawn, framePanels, panelFrame } from "./lib/frame_panels.js";
import { plotSpecs, prefetchSpan, rolloutSubtitle, stepText, timelineShapes, valueCell } from "./lib/rollout_view.js";
import { advancePlayback, keyCommand, playbackTarget } from "./lib/playback.js";

const PLOT_HEIGHT = 96;
const TIMELINE_HEIGHT = 6;
const FPS_CHOICES = [5, 10, 15, 30, 60];

function decodeImage(bytes, mime) {
  return createImageBitmap(new Blob([bytes], { type: mime }));
}

/** One frame store per panel: the raw frames in `frames`, the agent's view in `agent_frames`. */
function panelStores(model, panels) {
  const fields = { frame: ["frames", "frame_offsets"], agent: ["agent_frames", "agent_frame_offsets"] };
  return panels.map((p) => {
    const [data, offsets] = fields[p.id];
    return new FrameStore({ data: model.get(data), offsets: decodeOffsets(model.get(offsets)), mime: p.frames.mime, decode: decodeImage });
  });
}

// ------------------------------------------------------------------ DOM skeleton
/** A canvas pair: the plot drawn once per data change, and an overlay that only holds the cursor. */
function plotBox(label) {
  const base = h("canvas", { class: "rlb-ri-plot-base" });
  const over = h("canvas", { class: "rlb-ri-plot-over" });
  const box = h("div", { class: "rlb-ri-plot", "data-plot": label }, base, over);
  let scales = null, width = 0;
  return {
    box,
    draw(spec, w) {
      width = w;
      scales = drawPlot(fitCanvas(base, w, PLOT_HEIGHT), { ...spec, width: w, height: PLOT_HEIGHT });
      fitCanvas(over, w, PLOT_HEIGHT);
    },
    cursor(t) {
      if (!scales) return;
      const ctx = over.getContext("2d");
      ctx.clearRect(0, 0, width, PLOT_HEIGHT);
      drawCursor(ctx, scales, t);
    },
  };
}

function frameDom(panels) {
  const caption = h("div", { class: "rlb-note rlb-ri-frame-caption" });
  if (!panels.length) {
    return { canvases: [], caption, el: h("div", { class: "rlb-ri-framebox rlb-ri-noframe" }, h("div", { class: "rlb-note" }, "no frames")) };
  }
  const canvases = panels.map((p) => {
    const canvas = h("canvas", { class: p.id === "agent" ? "rlb-ri-agent" : "rlb-ri-frame" });
    canvas.width = p.frames.width;
    canvas.height = p.frames.height;
    return canvas;
  });
  const figures = panels.map((p, i) => h("figure", { class: "rlb-ri-panel", "data-panel": p.id }, canvases[i],
    p.label ? h("figcaption", { class: "rlb-note" }, p.label) : null));
  return { canvases, caption, el: h("div", { class: "rlb-ri-framebox" }, h("div", { class: "rlb-ri-panels" }, figures), caption) };
}

function controlsDom(steps, step) {
  const playBtn = h("button", { class: "rlb-button rlb-ri-play", title: "play / pause (space)" }, "▶");
  const slider = h("input", { class: "rlb-ri-slider", type: "range", min: "0", max: String(Math.max(0, steps - 1)), step: "1", value: String(step), "aria-label": "step" });
  const stepLabel = h("span", { class: "rlb-mono rlb-ri-step" });
  const fpsSelect = h("select", { class: "rlb-ri-fps", "aria-label": "frames per second" },
    FPS_CHOICES.map((f) => h("option", { value: String(f), selected: f === 30 }, `${f} fps`)));
  const timeline = h("canvas", { class: "rlb-ri-timeline", title: "episode ends: red = terminated, orange = truncated" });
  const el = h("div", { class: "rlb-ri-controls" }, playBtn, h("div", { class: "rlb-ri-track" }, slider, timeline), stepLabel, fpsSelect);
  return { el, playBtn, slider, stepLabel, fpsSelect, timeline };
}

function valuesDom(specs) {
  const rows = orderSeries(specs).map((s) => {
    const cell = h("td", { class: "rlb-mono" });
    const row = h("tr", { "data-key": s.name }, h("th", { title: `${s.dtype} ${JSON.stringify(s.shape)}` }, s.name), cell);
    return { row, cell, spec: s };
  });
  return { rows, el: h("div", { class: "rlb-ri-values" }, h("table", { class: "rlb-table" }, h("tbody", {}, rows.map((r) => r.row)))) };
}

function plotsDom(meta, specs, plotKey) {
  const boxes = { reward: plotBox("reward"), ret: plotBox("return"), key: plotBox("key") };
  const keySelect = h("select", { class: "rlb-ri-key", "aria-label": "plotted key" },
    specs.map((s) => h("option", { value: s.name, selected: s.name === plotKey }, s.name)));
  const el = h("div", { class: "rlb-ri-plots" },
    meta.reward ? boxes.reward.box : null, meta.reward ? boxes.ret.box : null,
    specs.length ? h("div", { class: "rlb-ri-keyrow" }, h("span", { class: "rlb-note" }, "plot"), keySelect) : null,
    specs.length ? boxes.key.box : null);
  return { el, boxes, keySelect };
}

/** The whole view; returns the elements the event handlers and updates touch. */
function buildDom(title, rollout, v) {
  const { meta, batch } = rollout;
  const subtitle = h("span", { class: "rlb-subtitle" });
  const envSelect = batch > 1 ? h("select", { class: "rlb-ri-env", "aria-label": "env" },
    Array.from({ length: batch }, (_, b) => h("option", { value: String(b) }, `env ${b}`))) : null;
  const notes = h("ul", { class: "rlb-ri-notes" }, (meta.notes || []).map((n) => h("li", { class: "rlb-note" }, n)));
  const frame = frameDom(v.panels);
  const controls = controlsDom(rollout.steps, v.step);
  const values = valuesDom(rollout.specs);
  const plots = plotsDom(meta, rollout.specs, v.plotKey);
  const root = h("div", { class: "rlb-root rlb-rollout-inspector", tabindex: "0" },
    h("div", { class: "rlb-header" }, h("span", { class: "rlb-title" }, title || "Rollout"), subtitle, envSelect),
    notes,
    h("div", { class: "rlb-ri-main" }, h("div", { class: "rlb-ri-left" }, frame.el, controls.el), values.el),
    plots.el);
  return {
    root, subtitle, envSelect, canvases: frame.canvases, frameCaption: frame.caption, ...controls,
    valueRows: values.rows, plots: plots.boxes, keySelect: plots.keySelect,
  };
}

/** What a key press landed on, for keyCommand: the slider, one of the drop-downs, or anything else. */
function keyTarget(ui, target) {
  if (target === ui.slider) return "slider";
  return [ui.keySelect, ui.fpsSelect, ui.envSelect].includes(target) ? "select" : "other";
}

// ------------------------------------------------------------------ updates (v: the view's state)
function rederive(v) {
  v.derived = deriveEnv(v.rollout, v.env);
  v.ui.subtitle.textContent = rolloutSubtitle(v.rollout, v.derived, v.env);
}

function plotWidth(v) {
  return fitWidth(v.ui.root.clientWidth, 240, 24);
}

function drawPlots(v) {
  const w = plotWidth(v);
  const textColor = getComputedStyle(v.ui.root).color || "#333";
  const specs = plotSpecs(v.rollout, v.derived, v.env, v.plotKey, textColor);
  for (const name of ["reward", "ret", "key"]) if (specs[name]) v.ui.plots[name].draw(specs[name], w);
  const tw = fitWidth(v.ui.slider.clientWidth, 100, 0, 400);
  const ctx = fitCanvas(v.ui.timeline, tw, TIMELINE_HEIGHT);
  ctx.clearRect(0, 0, tw, TIMELINE_HEIGHT);
  paintShapes(ctx, timelineShapes(v.derived, v.rollout.steps, tw, TIMELINE_HEIGHT));
}

function showFrame(v) {
  v.drawn = {};
  v.panels.forEach((panel, i) => showPanel(v, panel, i));
}

/** Draw panel `i` at the current env / step; once every panel shows this step, mark the root
 *  (data-drawn-step) and fire "rlb-frame" (tests and the latency readout wait for it). */
function showPanel(v, panel, i) {
  const { ui } = v;
  const store = v.stores[i], canvas = ui.canvases[i];
  const frame = panelFrame(panel, v.env, v.step);
  const step = v.step;
  const token = ++v.drawTokens[i];
  store.cancelPrefetch();  // what the user asks for now goes before any background decode
  const paint = (img) => {
    if (token !== v.drawTokens[i]) return;  // a later move already asked for another frame
    canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
    v.drawn[panel.id] = step;
    if (i === 0) {
      ui.frameCaption.textContent = frameCaption(frame.step, step);
      ui.root.dataset.drawnFrame = String(frame.index);
    }
    if (!allDrawn(v.panels, v.drawn, v.step)) return;
    ui.root.dataset.drawnStep = String(v.step);
    const ms = v.inputTime ? performance.now() - v.inputTime : 0;
    ui.root.dispatchEvent(new CustomEvent("rlb-frame", { detail: { step: v.step, frame: Number(ui.root.dataset.drawnFrame), ms } }));
  };
  // neighbours are decoded only once this frame is up: started earlier they would compete with it
  // for the decoder (a prefetch may cross into the next env's frames, which is harmless)
  const warm = () => { if (token === v.drawTokens[i]) store.prefetch(frame.index, ...prefetchSpan(v.playing)); };
  const hit = store.peek(frame.index);
  if (hit !== undefined) { paint(hit); warm(); }
  else store.get(frame.index).then((img) => { paint(img); warm(); }, (err) => { ui.frameCaption.textContent = `could not decode frame: ${err}`; });
}

function showStep(v) {
  const { ui } = v;
  ui.slider.value = String(v.step);
  ui.stepLabel.textContent = stepText(v.step, v.rollout.steps, v.derived.ends);
  ui.root.dataset.step = String(v.step);
  for (const { cell, row, spec } of ui.valueRows) {
    const { text, flag } = valueCell(v.rollout, spec, v.env, v.step);
    cell.textContent = text;
    row.classList.toggle("rlb-ri-flag", flag);
  }
  showFrame(v);
  for (const p of Object.values(ui.plots)) p.cursor(v.step);
}

function goTo(v, t) {
  const next = clampIndex(t, v.rollout.steps);
  if (next === v.step && v.ui.root.dataset.step === String(next)) return;
  v.step = next;
  showStep(v);
}

function tick(v, now) {
  if (!v.playing) return;
  const { steps, carry } = advancePlayback(v.carry, now - v.lastTime, Number(v.ui.fpsSelect.value) || 30);
  v.carry = carry;
  v.lastTime = now;
  if (steps) {
    const target = playbackTarget(v.step, steps, v.rollout.steps);
    goTo(v, target.step);
    if (target.end) { setPlaying(v, false); return; }
  }
  v.rafId = requestAnimationFrame((t) => tick(v, t));
}

function setPlaying(v, on) {
  v.playing = on && v.rollout.steps > 1;
  v.ui.playBtn.textContent = v.playing ? "❚❚" : "▶";
  v.ui.root.classList.toggle("rlb-ri-playing", v.playing);
  cancelAnimationFrame(v.rafId);
  if (v.playing) {
    if (v.step >= v.rollout.steps - 1) goTo(v, 0);
    v.lastTime = performance.now();
    v.carry = 0;
    v.rafId = requestAnimationFrame((t) => tick(v, t));
  }
}

// ------------------------------------------------------------------ render: wiring only
function render({ model, el }) {
  const rollout = decodeRollout(model.get("meta"), model.get("series"));
  const panels = framePanels(rollout.meta);
  const v = {
    rollout, panels, stores: panelStores(model, panels), drawn: {}, drawTokens: panels.map(() => 0),
    plotKey: initialPlotKey(rollout), derived: null,
    env: clampIndex(model.get("env") || 0, rollout.batch), step: clampIndex(model.get("step") || 0, rollout.steps),
    playing: false, rafId: 0, lastTime: 0, carry: 0,
    inputTime: 0,  // performance.now() of the last slider move, for the latency readout
  };
  const ui = v.ui = buildDom(model.get("title"), rollout, v);
  el.replaceChildren(ui.root);

  const redraw = () => { drawPlots(v); showStep(v); };
  const setEnv = (b) => {
    v.env = clampIndex(b, rollout.batch);
    if (ui.envSelect) ui.envSelect.value = String(v.env);
    rederive(v);
    redraw();
  };
  ui.playBtn.addEventListener("click", () => setPlaying(v, !v.playing));
  ui.slider.addEventListener("input", () => { v.inputTime = performance.now(); goTo(v, Number(ui.slider.value)); });
  ui.root.addEventListener("keydown", (e) => {
    const cmd = keyCommand(e.key, e.shiftKey, keyTarget(ui, e.target), v.step, rollout.steps);
    if (!cmd) return;
    if (cmd.toggle) setPlaying(v, !v.playing);
    else { if (cmd.input) v.inputTime = performance.now(); goTo(v, cmd.go); }
    e.preventDefault();
  });
  ui.keySelect.addEventListener("change", () => { v.plotKey = ui.keySelect.value; redraw(); });
  if (ui.envSelect) {
    ui.envSelect.value = String(v.env);
    ui.envSelect.addEventListener("change", () => setEnv(Number(ui.envSelect.value)));
  }
  const onStep = () => goTo(v, model.get("step"));
  const onEnv = () => setEnv(model.get("env"));
  model.on("change:step", onStep);
  model.on("change:env", onEnv);
  const unwatch = watchWidth(ui.root, () => plotWidth(v), redraw);

  rederive(v);
  redraw();
  return () => {
    setPlaying(v, false);
    unwatch();
    model.off("change:step", onStep);
    model.off("change:env", onEnv);
    for (const store of v.stores) store.cache.clear();
  };
}

export default { render };
