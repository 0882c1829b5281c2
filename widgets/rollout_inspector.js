// RolloutInspector view: a frame, a timeline (slider, play/pause, arrow keys), the step's values and
// canvas plots of reward, episode return and a chosen key, all with a cursor at the current step.
// Synced fields (rlbench/widgets/rollout_inspector.py): title, meta, series, frames, frame_offsets,
// step, env. Everything is decoded once here; scrubbing never talks to the kernel.
import { h } from "./lib/escape.js";
import { decodeSeries, decodeOffsets, stepValues, column, episodeEnds, cumulativeReturn, episodeAt, nearestFrame, formatValues, clampStep, FrameStore } from "./lib/rollout_data.js";
import { drawPlot, drawCursor, PALETTE } from "./lib/plot_canvas.js";
import { formatBytes } from "./lib/format.js";

const PLOT_HEIGHT = 96;

function decodeImage(bytes, mime) {
  return createImageBitmap(new Blob([bytes], { type: mime }));
}

/** A canvas pair: the plot drawn once per data change, and an overlay that only holds the cursor. */
function plotBox(label) {
  const base = h("canvas", { class: "rlb-ri-plot-base" });
  const over = h("canvas", { class: "rlb-ri-plot-over" });
  const box = h("div", { class: "rlb-ri-plot", "data-plot": label }, base, over);
  let scales = null, width = 0;
  const dpr = () => (globalThis.devicePixelRatio || 1);
  function size(canvas, w) {
    const r = dpr();
    canvas.width = Math.round(w * r);
    canvas.height = Math.round(PLOT_HEIGHT * r);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${PLOT_HEIGHT}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(r, 0, 0, r, 0, 0);
    return ctx;
  }
  return {
    box,
    draw(spec, w) {
      width = w;
      scales = drawPlot(size(base, w), { ...spec, width: w, height: PLOT_HEIGHT });
      size(over, w);
    },
    cursor(t) {
      if (!scales) return;
      const ctx = over.getContext("2d");
      ctx.clearRect(0, 0, width, PLOT_HEIGHT);
      drawCursor(ctx, scales, t);
    },
  };
}

function render({ model, el }) {
  const meta = model.get("meta") || {};
  const B = meta.batch || 1, T = meta.steps || 0;
  const specs = meta.series || [];
  const raw = model.get("series") || [];
  const data = specs.map((s, i) => decodeSeries(raw[i], s.format));
  const byName = new Map(specs.map((s, i) => [s.name, i]));
  const fm = meta.frames;
  const store = fm && fm.count
    ? new FrameStore({ data: model.get("frames"), offsets: decodeOffsets(model.get("frame_offsets")), mime: fm.mime, decode: decodeImage })
    : null;
  const perEnv = fm && fm.count ? fm.steps.length : 0;

  let env = clampStep(model.get("env") || 0, B);
  let step = clampStep(model.get("step") || 0, T);
  let playing = false, rafId = 0, lastTime = 0, carry = 0, drawToken = 0;
  let plotKey = meta.plot_key ?? (specs[0] && specs[0].name);
  let inputTime = 0;  // performance.now() of the last slider move, for the latency readout

  // ------------------------------------------------------------------ DOM
  const title = h("span", { class: "rlb-title" }, model.get("title") || "Rollout");
  const subtitle = h("span", { class: "rlb-subtitle" });
  const envSelect = B > 1 ? h("select", { class: "rlb-ri-env", "aria-label": "env" },
    Array.from({ length: B }, (_, b) => h("option", { value: String(b) }, `env ${b}`))) : null;
  const notes = h("ul", { class: "rlb-ri-notes" }, (meta.notes || []).map((n) => h("li", { class: "rlb-note" }, n)));

  const canvas = h("canvas", { class: "rlb-ri-frame" });
  const frameCaption = h("div", { class: "rlb-note rlb-ri-frame-caption" });
  if (store) { canvas.width = fm.width; canvas.height = fm.height; }
  const frameBox = store
    ? h("div", { class: "rlb-ri-framebox" }, canvas, frameCaption)
    : h("div", { class: "rlb-ri-framebox rlb-ri-noframe" }, h("div", { class: "rlb-note" }, "no frames"));

  const playBtn = h("button", { class: "rlb-button rlb-ri-play", title: "play / pause (space)" }, "▶");
  const slider = h("input", { class: "rlb-ri-slider", type: "range", min: "0", max: String(Math.max(0, T - 1)), step: "1", value: String(step), "aria-label": "step" });
  const stepLabel = h("span", { class: "rlb-mono rlb-ri-step" });
  const fpsSelect = h("select", { class: "rlb-ri-fps", "aria-label": "frames per second" },
    [5, 10, 15, 30, 60].map((f) => h("option", { value: String(f), selected: f === 30 }, `${f} fps`)));
  const timeline = h("canvas", { class: "rlb-ri-timeline", title: "episode ends: red = terminated, orange = truncated" });
  const controls = h("div", { class: "rlb-ri-controls" }, playBtn, h("div", { class: "rlb-ri-track" }, slider, timeline), stepLabel, fpsSelect);

  // the action first, then the rest of the step, then what the step produced (reward and flags first)
  const rank = (s) => {
    const next = s.key[0] === "next" ? 100 : 0;
    const name = s.key[s.key.length - 1];
    const first = ["action", "reward", "done", "terminated", "truncated"].indexOf(name);
    return next + (first >= 0 ? first : 10) + (s.key.length > 2 ? 1 : 0);
  };
  const ordered = specs.map((s, i) => [rank(s), i, s]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
  const valueRows = ordered.map((s) => {
    const cell = h("td", { class: "rlb-mono" });
    const row = h("tr", { "data-key": s.name }, h("th", { title: `${s.dtype} ${JSON.stringify(s.shape)}` }, s.name), cell);
    return { row, cell, spec: s };
  });
  const values = h("div", { class: "rlb-ri-values" },
    h("table", { class: "rlb-table" }, h("tbody", {}, valueRows.map((r) => r.row))));

  const rewardPlot = plotBox("reward");
  const returnPlot = plotBox("return");
  const keyPlot = plotBox("key");
  const keySelect = h("select", { class: "rlb-ri-key", "aria-label": "plotted key" },
    specs.map((s) => h("option", { value: s.name, selected: s.name === plotKey }, s.name)));
  const plots = h("div", { class: "rlb-ri-plots" },
    meta.reward ? rewardPlot.box : null, meta.reward ? returnPlot.box : null,
    specs.length ? h("div", { class: "rlb-ri-keyrow" }, h("span", { class: "rlb-note" }, "plot"), keySelect) : null,
    specs.length ? keyPlot.box : null);

  const root = h("div", { class: "rlb-root rlb-rollout-inspector", tabindex: "0" },
    h("div", { class: "rlb-header" }, title, subtitle, envSelect),
    notes,
    h("div", { class: "rlb-ri-main" }, h("div", { class: "rlb-ri-left" }, frameBox, controls), values),
    plots);
  el.replaceChildren(root);

  // ------------------------------------------------------------------ derived data per env
  let derived = null;
  function derive() {
    const col = (name) => (name != null && byName.has(name)
      ? column(data[byName.get(name)], specs[byName.get(name)].size, T, env, 0) : null);
    const reward = col(meta.reward);
    const done = col(meta.done);
    const terminated = col(meta.terminated);
    const ends = episodeEnds(done);
    derived = { reward, done, terminated, ends, ret: reward ? cumulativeReturn(reward, done) : null };
    const parts = [];
    if (done) parts.push(`${ends.length} episode end${ends.length === 1 ? "" : "s"}${B > 1 ? ` in env ${env}` : ""}`);
    if (reward) parts.push(`reward ${formatValues([reward.reduce((a, r) => a + (Number.isFinite(r) ? r : 0), 0)])} in total`);
    if (store) parts.push(`${fm.count} frame${fm.count === 1 ? "" : "s"} at ${fm.width}×${fm.height}`);
    if (meta.bytes) parts.push(formatBytes(meta.bytes));
    subtitle.textContent = parts.join(" · ");
  }

  function plotWidth() {
    return Math.max(240, Math.floor((root.clientWidth || 720) - 24));
  }

  function drawPlots() {
    const w = plotWidth();
    const textColor = getComputedStyle(root).color || "#333";
    const { reward, ret, ends } = derived;
    if (reward) {
      rewardPlot.draw({ steps: T, series: [{ values: reward, label: "reward" }], boundaries: ends, title: "reward", textColor }, w);
      returnPlot.draw({ steps: T, series: [{ values: ret, label: "return", color: PALETTE[2], breakAfter: ends }], boundaries: ends, title: "return (per episode)", textColor }, w);
    }
    if (specs.length && byName.has(plotKey)) {
      const i = byName.get(plotKey), s = specs[i];
      const n = Math.min(s.size, PALETTE.length);
      const series = Array.from({ length: n }, (_, c) => ({ values: column(data[i], s.size, T, env, c), label: s.size > 1 ? `[${c}]` : s.name, stepped: s.kind !== "float" }));
      keyPlot.draw({ steps: T, series, boundaries: ends, title: s.size > PALETTE.length ? `${s.name} (first ${n} of ${s.size})` : s.name, textColor }, w);
    }
    drawTimeline(w);
  }

  function drawTimeline() {
    const w = Math.max(100, slider.clientWidth || 400);
    const r = globalThis.devicePixelRatio || 1;
    timeline.width = Math.round(w * r); timeline.height = Math.round(6 * r);
    timeline.style.width = `${w}px`; timeline.style.height = "6px";
    const ctx = timeline.getContext("2d");
    ctx.setTransform(r, 0, 0, r, 0, 0);
    ctx.clearRect(0, 0, w, 6);
    // the range thumb's travel is inset by about half its width (8 px) at both ends
    const x = (t) => 8 + (w - 16) * (T > 1 ? t / (T - 1) : 0);
    for (const t of derived.ends) {
      ctx.fillStyle = derived.terminated && derived.terminated[t] ? "#d62728" : "#ff9800";
      ctx.fillRect(Math.round(x(t)) - 1, 0, 2, 6);
    }
  }

  // ------------------------------------------------------------------ per-step updates
  function showValues() {
    for (const { cell, row, spec } of valueRows) {
      const v = stepValues(data[byName.get(spec.name)], spec.size, T, env, step);
      cell.textContent = formatValues(v, spec.kind);
      row.classList.toggle("rlb-ri-flag", spec.kind === "bool" && v.some((x) => x));
    }
  }

  function showFrame() {
    if (!store) return;
    const k = nearestFrame(fm.steps, step);
    const idx = env * perEnv + k;
    const shownStep = fm.steps[k];
    const token = ++drawToken;
    store.cancelPrefetch();  // what the user asks for now goes before any background decode
    const paint = (img) => {
      if (token !== drawToken) return;  // a later move already asked for another frame
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      frameCaption.textContent = shownStep === step ? `frame at step ${shownStep}` : `nearest frame: step ${shownStep}`;
      root.dataset.drawnStep = String(step);
      root.dataset.drawnFrame = String(idx);
      const ms = inputTime ? performance.now() - inputTime : 0;
      root.dispatchEvent(new CustomEvent("rlb-frame", { detail: { step, frame: idx, ms } }));
    };
    // neighbours are decoded only once this frame is up: started earlier they would compete with it
    // for the decoder (a prefetch may cross into the next env's frames, which is harmless)
    const warm = () => { if (token === drawToken) store.prefetch(idx, playing ? 8 : 3, playing ? 0 : 2); };
    const hit = store.peek(idx);
    if (hit !== undefined) { paint(hit); warm(); }
    else store.get(idx).then((img) => { paint(img); warm(); }, (err) => { frameCaption.textContent = `could not decode frame: ${err}`; });
  }

  function update() {
    slider.value = String(step);
    const ep = derived.ends.length ? ` · episode ${episodeAt(derived.ends, step)}` : "";
    stepLabel.textContent = `step ${step} / ${Math.max(0, T - 1)}${ep}`;
    root.dataset.step = String(step);
    showValues();
    showFrame();
    for (const p of [rewardPlot, returnPlot, keyPlot]) p.cursor(step);
  }

  function go(t) {
    const next = clampStep(t, T);
    if (next === step && root.dataset.step === String(next)) return;
    step = next;
    update();
  }

  // ------------------------------------------------------------------ playback and input
  function tick(now) {
    if (!playing) return;
    const fps = Number(fpsSelect.value) || 30;
    carry += ((now - lastTime) * fps) / 1000;
    lastTime = now;
    if (carry >= 1) {
      const n = Math.floor(carry);
      carry -= n;
      if (step + n >= T - 1) { go(T - 1); setPlaying(false); return; }
      go(step + n);
    }
    rafId = requestAnimationFrame(tick);
  }

  function setPlaying(on) {
    playing = on && T > 1;
    playBtn.textContent = playing ? "❚❚" : "▶";
    root.classList.toggle("rlb-ri-playing", playing);
    cancelAnimationFrame(rafId);
    if (playing) {
      if (step >= T - 1) go(0);
      lastTime = performance.now(); carry = 0;
      rafId = requestAnimationFrame(tick);
    }
  }

  playBtn.addEventListener("click", () => setPlaying(!playing));
  slider.addEventListener("input", () => { inputTime = performance.now(); go(Number(slider.value)); });
  root.addEventListener("keydown", (e) => {
    if (e.target === keySelect || e.target === fpsSelect || e.target === envSelect) return;
    const jump = e.shiftKey ? 10 : 1;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      if (e.target === slider) return;  // the range input moves itself and fires "input"
      inputTime = performance.now();
      go(step + (e.key === "ArrowRight" ? jump : -jump));
    } else if (e.key === "Home") go(0);
    else if (e.key === "End") go(T - 1);
    else if (e.key === " ") setPlaying(!playing);
    else return;
    e.preventDefault();
  });
  keySelect.addEventListener("change", () => { plotKey = keySelect.value; drawPlots(); update(); });
  if (envSelect) {
    envSelect.value = String(env);
    envSelect.addEventListener("change", () => { env = clampStep(Number(envSelect.value), B); derive(); drawPlots(); update(); });
  }
  const onStep = () => go(model.get("step"));
  const onEnv = () => { env = clampStep(model.get("env"), B); if (envSelect) envSelect.value = String(env); derive(); drawPlots(); update(); };
  model.on("change:step", onStep);
  model.on("change:env", onEnv);

  let lastWidth = 0;
  const ro = typeof ResizeObserver !== "undefined" ? new ResizeObserver(() => {
    const w = plotWidth();
    if (Math.abs(w - lastWidth) > 4) { lastWidth = w; drawPlots(); update(); }
  }) : null;
  if (ro) ro.observe(root);

  derive();
  drawPlots();
  update();

  return () => {
    setPlaying(false);
    if (ro) ro.disconnect();
    model.off("change:step", onStep);
    model.off("change:env", onEnv);
    if (store) store.cache.clear();
  };
}

export default { render };
