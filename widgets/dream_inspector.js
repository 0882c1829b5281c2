// DreamInspector view: the real frame, the posterior reconstruction and the imagined frame of a chosen
// dream side by side, one timeline (slider, play/pause, arrow keys), and canvas plots of the rewards and
// the frame error below, with a cursor at the current step.
// Synced fields (rlbench/widgets/dream_inspector.py): title, meta, series, real, real_offsets, reco,
// reco_offsets, dream, dream_offsets, step, start. Everything is decoded once; nothing goes to the kernel.
// What is shown is worked out in lib/dream_view.js (pure, node-tested); this file builds the DOM and wires events.
import { h } from "./lib/escape.js";
import { decodeOffsets, FrameStore } from "./lib/rollout_data.js";
import { clampIndex } from "./lib/indices.js";
import { drawCursor, drawPlot } from "./lib/plot_canvas.js";
import { fitCanvas, fitWidth, watchWidth } from "./lib/canvas.js";
import { advancePlayback, keyCommand, playbackTarget } from "./lib/playback.js";
import { decodeDream, dreamFrameAt, dreamSubtitle, errorPlot, rewardPlot, startLabel, stepForStart } from "./lib/dream_view.js";

const PLOT_HEIGHT = 110;
const FPS_CHOICES = [2, 5, 10, 15, 30];
const PANELS = [
  { id: "real", label: "real" },
  { id: "reco", label: "reconstruction (posterior)" },
  { id: "dream", label: "imagined (open loop)" },
];

function decodeImage(bytes, mime) {
  return createImageBitmap(new Blob([bytes], { type: mime }));
}

// ------------------------------------------------------------------ DOM
function plotBox(name) {
  const base = h("canvas", { class: "rlb-di-plot-base" });
  const over = h("canvas", { class: "rlb-di-plot-over" });
  const box = h("div", { class: "rlb-di-plot", "data-plot": name }, base, over);
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

function panelDom(panel, frames) {
  const canvas = h("canvas", { class: `rlb-di-frame rlb-di-${panel.id}` });
  canvas.width = frames ? frames.width : 64;
  canvas.height = frames ? frames.height : 64;
  const caption = h("figcaption", { class: "rlb-note rlb-di-caption" });
  const el = h("figure", { class: "rlb-di-panel", "data-panel": panel.id },
    h("div", { class: "rlb-di-label" }, panel.label), canvas, caption);
  return { ...panel, canvas, caption, el };
}

function buildDom(title, dream, v) {
  const subtitle = h("span", { class: "rlb-subtitle" }, dreamSubtitle(dream));
  const startSelect = dream.starts.length ? h("select", { class: "rlb-di-start", "aria-label": "dream start" },
    dream.starts.map((s, i) => h("option", { value: String(i) }, startLabel(s)))) : null;
  const notes = h("ul", { class: "rlb-di-notes" }, (dream.meta.notes || []).map((n) => h("li", { class: "rlb-note" }, n)));
  const panels = PANELS.filter((p) => dream.panels[p.id] || p.id === "dream" && dream.starts.length)
    .map((p) => panelDom(p, dream.panels[p.id]));
  const playBtn = h("button", { class: "rlb-button rlb-di-play", title: "play / pause (space)" }, "▶");
  const slider = h("input", { class: "rlb-di-slider", type: "range", min: "0", max: String(Math.max(0, dream.steps - 1)), step: "1", value: String(v.step), "aria-label": "step" });
  const stepLabel = h("span", { class: "rlb-mono rlb-di-step" });
  const fpsSelect = h("select", { class: "rlb-di-fps", "aria-label": "frames per second" },
    FPS_CHOICES.map((f) => h("option", { value: String(f), selected: f === 10 }, `${f} fps`)));
  const plots = { reward: plotBox("reward"), error: plotBox("error") };
  const root = h("div", { class: "rlb-root rlb-dream-inspector", tabindex: "0" },
    h("div", { class: "rlb-header" }, h("span", { class: "rlb-title" }, title || "Dream"), subtitle, startSelect),
    notes,
    h("div", { class: "rlb-di-panels" }, panels.map((p) => p.el)),
    h("div", { class: "rlb-di-controls" }, playBtn, slider, stepLabel, fpsSelect),
    h("div", { class: "rlb-di-plots" }, plots.reward.box, plots.error.box));
  return { root, startSelect, panels, playBtn, slider, stepLabel, fpsSelect, plots };
}

// ------------------------------------------------------------------ updates (v: the view's state)
function drawPlots(v) {
  const w = fitWidth(v.ui.root.clientWidth, 240, 24);
  const textColor = getComputedStyle(v.ui.root).color || "#333";
  const specs = { reward: rewardPlot(v.dream, v.start, textColor), error: errorPlot(v.dream, v.start, textColor) };
  for (const [name, spec] of Object.entries(specs)) {
    v.ui.plots[name].box.hidden = !spec;
    if (spec) v.ui.plots[name].draw(spec, w);
  }
}

/** Which frame each panel shows now: {index | null, caption}. */
function panelTarget(v, panel) {
  if (panel.id === "dream") return dreamFrameAt(v.dream, v.start, v.step);
  const caption = panel.id === "real" ? `step ${v.step}` : `step ${v.step} · seen by the model`;
  return { index: v.step, caption };
}

function showPanels(v) {
  const { ui } = v;
  const token = ++v.drawToken;
  const step = v.step;
  const jobs = ui.panels.map((panel) => {
    const target = panelTarget(v, panel);
    panel.caption.textContent = target.caption;
    panel.el.dataset.frame = target.index == null ? "" : String(target.index);
    const ctx = panel.canvas.getContext("2d");
    const store = v.stores[panel.id];
    if (target.index == null || !store) {
      ctx.clearRect(0, 0, panel.canvas.width, panel.canvas.height);
      panel.el.classList.add("rlb-di-empty");
      return Promise.resolve();
    }
    panel.el.classList.remove("rlb-di-empty");
    return store.get(target.index).then((img) => {
      if (token === v.drawToken) ctx.drawImage(img, 0, 0, panel.canvas.width, panel.canvas.height);
      store.prefetch(target.index, v.playing ? 6 : 2, v.playing ? 0 : 1);
    });
  });
  Promise.all(jobs).then(() => {
    if (token !== v.drawToken) return;
    ui.root.dataset.drawnStep = String(step);
    ui.root.dispatchEvent(new CustomEvent("rlb-frame", { detail: { step } }));
  }, (err) => { ui.panels[0].caption.textContent = `could not decode frame: ${err}`; });
}

function showStep(v) {
  const { ui } = v;
  ui.slider.value = String(v.step);
  ui.stepLabel.textContent = `step ${v.step} / ${Math.max(0, v.dream.steps - 1)}`;
  ui.root.dataset.step = String(v.step);
  ui.root.dataset.start = String(v.start);
  showPanels(v);
  for (const p of Object.values(ui.plots)) p.cursor(v.step);
}

function goTo(v, t) {
  v.step = clampIndex(t, v.dream.steps);
  showStep(v);
}

function setStart(v, i, jump) {
  v.start = clampIndex(i, v.dream.starts.length);
  if (v.ui.startSelect) v.ui.startSelect.value = String(v.start);
  drawPlots(v);
  if (jump) goTo(v, stepForStart(v.dream, v.start));
  else showStep(v);
}

function tick(v, now) {
  if (!v.playing) return;
  const { steps, carry } = advancePlayback(v.carry, now - v.lastTime, Number(v.ui.fpsSelect.value) || 10);
  v.carry = carry;
  v.lastTime = now;
  if (steps) {
    const target = playbackTarget(v.step, steps, v.dream.steps);
    goTo(v, target.step);
    if (target.end) { setPlaying(v, false); return; }
  }
  v.rafId = requestAnimationFrame((t) => tick(v, t));
}

function setPlaying(v, on) {
  v.playing = on && v.dream.steps > 1;
  v.ui.playBtn.textContent = v.playing ? "❚❚" : "▶";
  cancelAnimationFrame(v.rafId);
  if (v.playing) {
    if (v.step >= v.dream.steps - 1) goTo(v, 0);
    v.lastTime = performance.now();
    v.carry = 0;
    v.rafId = requestAnimationFrame((t) => tick(v, t));
  }
}

// ------------------------------------------------------------------ render: wiring only
function render({ model, el }) {
  const dream = decodeDream(model.get("meta"), model.get("series"));
  const stores = {};
  for (const { id } of PANELS) {
    const frames = dream.panels[id];
    if (frames) stores[id] = new FrameStore({ data: model.get(id), offsets: decodeOffsets(model.get(`${id}_offsets`)), mime: frames.mime, decode: decodeImage });
  }
  const v = {
    dream, stores, step: clampIndex(model.get("step") || 0, dream.steps),
    start: clampIndex(model.get("start") || 0, dream.starts.length),
    playing: false, rafId: 0, lastTime: 0, carry: 0, drawToken: 0,
  };
  const ui = v.ui = buildDom(model.get("title"), dream, v);
  el.replaceChildren(ui.root);

  ui.playBtn.addEventListener("click", () => setPlaying(v, !v.playing));
  ui.slider.addEventListener("input", () => goTo(v, Number(ui.slider.value)));
  if (ui.startSelect) ui.startSelect.addEventListener("change", () => setStart(v, Number(ui.startSelect.value), true));
  ui.root.addEventListener("keydown", (e) => {
    const target = e.target === ui.slider ? "slider" : [ui.startSelect, ui.fpsSelect].includes(e.target) ? "select" : "other";
    const cmd = keyCommand(e.key, e.shiftKey, target, v.step, dream.steps);
    if (!cmd) return;
    if (cmd.toggle) setPlaying(v, !v.playing);
    else goTo(v, cmd.go);
    e.preventDefault();
  });
  const onStep = () => goTo(v, model.get("step"));
  const onStart = () => setStart(v, model.get("start"), false);
  model.on("change:step", onStep);
  model.on("change:start", onStart);
  const unwatch = watchWidth(ui.root, () => fitWidth(ui.root.clientWidth, 240, 24), () => { drawPlots(v); showStep(v); });

  setStart(v, v.start, false);
  return () => {
    setPlaying(v, false);
    unwatch();
    model.off("change:step", onStep);
    model.off("change:start", onStart);
    for (const store of Object.values(stores)) store.cache.clear();
  };
}

export default { render };
