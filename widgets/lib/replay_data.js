// Pure helpers of the replay inspector: where items fall on the fill strip, which page holds an
// index, histogram bar geometry. No DOM here (tested with node --test).

/** Position of flat item `index` on a strip of `width` px covering `rows` rows of `perRow` items. */
export function stripX(index, perRow, rows, width) {
  const row = Math.floor(index / Math.max(1, perRow));
  return rows > 0 ? ((row + 0.5) / rows) * width : 0;
}

/** The flat index of the first item of the row under strip position `x` (for clicks). */
export function stripIndex(x, perRow, rows, width) {
  const row = Math.min(rows - 1, Math.max(0, Math.floor((x / Math.max(1, width)) * rows)));
  return row * Math.max(1, perRow);
}

/** Which page (0-based) shows flat index `index`. */
export function pageOf(index, pageSize) {
  return Math.floor(Math.max(0, index) / Math.max(1, pageSize));
}

/** Count of each sampled index that falls in [start, stop): Map(index -> times sampled). */
export function sampledIn(indices, start, stop) {
  const hits = new Map();
  for (const i of indices || []) if (i >= start && i < stop) hits.set(i, (hits.get(i) || 0) + 1);
  return hits;
}

/** Bars of a histogram in a `width` x `height` box: [{x, y, w, h, count, lo, hi}], tallest = full height. */
export function histogramBars(counts, edges, width, height) {
  const n = counts.length;
  if (!n) return [];
  const top = Math.max(...counts, 1);
  const w = width / n;
  return counts.map((c, i) => {
    const hgt = (c / top) * height;
    return { x: i * w, y: height - hgt, w: Math.max(1, w - 1), h: hgt, count: c, lo: edges[i], hi: edges[i + 1] };
  });
}

/** "12.5%" with one decimal, "<0.1%" for a sliver, "100%" when full. */
export function formatPercent(fraction) {
  if (!(fraction > 0)) return "0%";
  if (fraction >= 1) return "100%";
  if (fraction < 0.001) return "<0.1%";
  return `${(fraction * 100).toFixed(1)}%`;
}

/** Rows of the strip that were sampled, with multiplicity: Map(row -> count), for drawing ticks. */
export function sampledRows(indices, perRow) {
  const rows = new Map();
  for (const i of indices || []) {
    const r = Math.floor(i / Math.max(1, perRow));
    rows.set(r, (rows.get(r) || 0) + 1);
  }
  return rows;
}
