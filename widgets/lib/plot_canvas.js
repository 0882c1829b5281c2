// Small canvas line plots with a moving cursor, no plotting library.
// Ranges, scales, ticks and decimation come from scales.js (shared with the SVG charts); `drawPlot`
// only issues canvas 2D calls on the context it is given, so tests pass a recording stub.
import { decimate, extent, linearScale, niceTicks, padRange } from "./scales.js";

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
  const [lo, hi] = padRange(extent(...series.map((s) => s.values)));
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
    // every point while there are at most two per pixel column, else each column's min and max;
    // `stepped` (hold each value until the next step: actions, flags) and `breakAfter` (lift the pen
    // after these steps: a return restarts at an episode end, no line joins two episodes) apply when
    // nothing was dropped
    const keep = decimate(s.values, area.width);
    const whole = keep.length === s.values.length;
    const stepped = whole && s.stepped;
    const breaks = whole && s.breakAfter ? new Set(s.breakAfter) : null;
    let pen = false, last = 0;
    for (const t of keep) {
      const v = s.values[t];
      if (!Number.isFinite(v)) { pen = false; continue; }
      if (!pen) { ctx.moveTo(x(t), y(v)); pen = true; } else {
        if (stepped) ctx.lineTo(x(t), y(last));
        ctx.lineTo(x(t), y(v));
      }
      last = v;
      if (breaks && breaks.has(t)) pen = false;
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
