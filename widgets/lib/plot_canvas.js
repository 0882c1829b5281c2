// Small canvas line plots with a moving cursor, no plotting library.
// The scale and decimation maths are pure (tested under node); `drawPlot` only issues canvas 2D
// calls on the context it is given, so tests pass a recording stub.

/** [min, max] of finite values over several arrays; [0, 1] when there are none, widened when flat. */
export function dataRange(arrays) {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) { const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1; return [lo - pad, hi + pad]; }
  return [lo, hi];
}

/** Round tick positions covering [lo, hi], about `count` of them (1, 2 or 5 times a power of ten). */
export function niceTicks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

/** Linear map from [d0, d1] to [r0, r1]. */
export function linearScale(d0, d1, r0, r1) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  const f = (v) => r0 + (v - d0) * k;
  f.invert = (p) => (k === 0 ? d0 : d0 + (p - r0) / k);
  return f;
}

/** Min/max per pixel column: a 10,000-step series on a 500 px plot becomes 500 [min, max] pairs,
 *  which draws the same envelope as every point would, at a fraction of the cost.
 *  Returns [{t, lo, hi}] where `t` is the column's first step. */
export function decimate(values, columns) {
  const n = values.length;
  if (n === 0) return [];
  const cols = Math.max(1, Math.min(columns, n));
  const out = [];
  for (let c = 0; c < cols; c++) {
    const a = Math.floor((c * n) / cols), b = Math.max(a + 1, Math.floor(((c + 1) * n) / cols));
    let lo = Infinity, hi = -Infinity;
    for (let i = a; i < b; i++) {
      const v = values[i];
      if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    out.push({ t: a, t1: b - 1, lo, hi });
  }
  return out;
}

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/** Layout of a plot of `width` x `height` CSS pixels: the data area inside the margins. */
export function plotArea(width, height) {
  const left = 44, right = 8, top = 16, bottom = 16;
  return { left, top, width: Math.max(1, width - left - right), height: Math.max(1, height - top - bottom) };
}

/** Draw lines (decimated), episode boundaries (dashed verticals after each done step) and axes.
 *  spec: {width, height, steps, series: [{values, color, label, stepped?, breakAfter?}], boundaries: [t...], title,
 *  textColor?, mutedColor?}.
 *  Returns the x scale (step -> px) so a cursor can be drawn on top later. */
export function drawPlot(ctx, spec) {
  const { width, height, steps, series = [], boundaries = [], title = "" } = spec;
  // text takes the theme's colour (dark themes); the grey grid and markers read on either background
  const textColor = spec.textColor || "#333", mutedColor = spec.mutedColor || "#888";
  const area = plotArea(width, height);
  const [lo, hi] = dataRange(series.map((s) => s.values));
  const x = linearScale(0, Math.max(1, steps - 1), area.left, area.left + area.width);
  const y = linearScale(lo, hi, area.top + area.height, area.top);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  ctx.lineWidth = 1;
  // grid and y ticks
  ctx.strokeStyle = "rgba(128, 128, 128, 0.22)";
  ctx.fillStyle = mutedColor;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of niceTicks(lo, hi, 3)) {
    const py = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(area.left, py); ctx.lineTo(area.left + area.width, py); ctx.stroke();
    ctx.fillText(String(v), area.left - 4, py);
  }
  // episode boundaries: between step t and t + 1
  if (boundaries.length && boundaries.length < area.width) {
    ctx.strokeStyle = "rgba(128, 128, 128, 0.6)";
    if (ctx.setLineDash) ctx.setLineDash([3, 3]);
    for (const t of boundaries) {
      if (t >= steps - 1) continue;
      const px = Math.round(x(t + 0.5)) + 0.5;
      ctx.beginPath(); ctx.moveTo(px, area.top); ctx.lineTo(px, area.top + area.height); ctx.stroke();
    }
    if (ctx.setLineDash) ctx.setLineDash([]);
  }
  // lines
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color || PALETTE[k % PALETTE.length];
    ctx.lineWidth = 1.25;
    ctx.beginPath();
    let pen = false;
    if (s.values.length > 2 * area.width) {
      for (const col of decimate(s.values, Math.floor(area.width))) {
        if (!Number.isFinite(col.lo)) { pen = false; continue; }
        const px = x(col.t);
        if (!pen) { ctx.moveTo(px, y(col.lo)); pen = true; } else ctx.lineTo(px, y(col.lo));
        ctx.lineTo(px, y(col.hi));
      }
    } else {
      // `stepped`: hold each value until the next step (actions, flags); `breakAfter`: lift the pen
      // after these steps (a return restarts at an episode end, no line joins two episodes)
      const breaks = s.breakAfter ? new Set(s.breakAfter) : null;
      let last = 0;
      for (let t = 0; t < s.values.length; t++) {
        const v = s.values[t];
        if (!Number.isFinite(v)) { pen = false; continue; }
        if (!pen) { ctx.moveTo(x(t), y(v)); pen = true; } else {
          if (s.stepped) ctx.lineTo(x(t), y(last));
          ctx.lineTo(x(t), y(v));
        }
        last = v;
        if (breaks && breaks.has(t)) pen = false;
      }
    }
    ctx.stroke();
  });
  // title and legend, top left
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillStyle = textColor;
  let tx = area.left;
  ctx.fillText(title, tx, 2);
  tx += ctx.measureText ? ctx.measureText(title).width + 10 : 80;
  if (series.length > 1) {
    series.forEach((s, k) => {
      ctx.fillStyle = s.color || PALETTE[k % PALETTE.length];
      ctx.fillText(s.label, tx, 2);
      tx += (ctx.measureText ? ctx.measureText(s.label).width : 40) + 8;
    });
  }
  return { x, y, area };
}

/** The cursor: a vertical line at step `t` over a plot drawn by `drawPlot` (its returned scales). */
export function drawCursor(ctx, scales, t) {
  const px = Math.round(scales.x(t)) + 0.5;
  ctx.strokeStyle = "#d62728";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(px, scales.area.top);
  ctx.lineTo(px, scales.area.top + scales.area.height);
  ctx.stroke();
  return px;
}
