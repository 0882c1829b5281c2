// What the replay inspector shows, from its synced fields: header, summary cards, statistics rows,
// the fill strip's shapes and legend, the histogram, the page of items, and the kernel requests its
// controls make. Pure (no DOM, no canvas); the view turns these descriptions into elements
// (widgets/tests/replay_view.test.mjs).
import { formatNumber, formatShape } from "./format.js";
import { formatPercent, histogramBars, pageOf, sampledIn, sampledRows, stripIndex, stripX } from "./replay_data.js";
import { clampIndex } from "./indices.js";

/** A statistic as shown: "–" when missing, strings ("nan", "inf") as they are, numbers compact. */
export function statText(x) {
  if (x === null || x === undefined) return "–";
  return typeof x === "string" ? x : formatNumber(x);
}

/** {title, subtitle}: the buffer's title and its storage · sampler · writer. */
export function replayHeader(title, summary) {
  const s = summary || {};
  return { title: title || "Replay buffer", subtitle: [s.storage, s.sampler, s.writer].filter(Boolean).join(" · ") };
}

/** Summary cards: [{label, value, extra}] (extra: a note under the value, or null). */
export function summaryCards(summary) {
  const s = summary || {};
  const cards = [
    { label: "stored", value: `${(s.length ?? 0).toLocaleString()}`, extra: `of ${(s.capacity ?? 0).toLocaleString()} · ${formatPercent(s.fill)}` },
    { label: "write cursor", value: `row ${s.write_cursor ?? 0}`, extra: `of ${s.rows ?? 0} rows${s.items_per_row > 1 ? ` × ${s.items_per_row}` : ""}` },
    { label: "storage shape", value: formatShape(s.shape || []), extra: `ndim ${s.ndim ?? 1}` },
  ];
  if (s.batch_size != null) cards.push({ label: "batch size", value: String(s.batch_size), extra: null });
  if (s.prioritized) {
    cards.push({
      label: "prioritized", value: `α ${statText(s.alpha)} · β ${statText(s.beta)}`,
      extra: s.max_priority != null ? `max p ${statText(s.max_priority)}` : null,
    });
  }
  return cards;
}

/** Rows of the per-key statistics table: [{name, cells: [{text, cls}]}] (cls null: no class). */
export function statsRows(stats) {
  return (stats || []).map((st) => ({
    name: st.name,
    cells: [
      { text: st.dtype ?? "", cls: null },
      { text: st.shape ? formatShape(st.shape) : "", cls: "rlb-mono" },
      ...[st.mean, st.std, st.min, st.max].map((v) => ({ text: statText(v), cls: "rlb-mono" })),
      { text: String(st.nonfinite ?? 0), cls: st.nonfinite ? "rlb-mono rlb-rp-bad" : "rlb-mono" },
    ],
  }));
}

/** The fill strip as shapes for canvas.paintShapes, `width` x `height` px: the rows (grey), the filled
 *  ones (blue), a red tick per sampled row (darker when sampled more often), and the write cursor (a
 *  dark triangle above the strip and a line through it, where the next row goes). */
export function stripShapes(summary, sample, width, height) {
  const s = summary || {};
  const rows = Math.max(1, s.rows || 1);
  const shapes = [
    { fill: "#e9ecef", rect: [0, 6, width, height - 8] },
    { fill: "#9ecae1", rect: [0, 6, (Math.min(s.len_rows || 0, rows) / rows) * width, height - 8] },
  ];
  for (const [row, count] of sampledRows((sample || {}).indices, s.items_per_row || 1)) {
    const x = stripX(row, 1, rows, width);
    shapes.push({ fill: "#d62728", alpha: Math.min(1, 0.55 + 0.15 * count), rect: [Math.round(x) - 1, 6, 2, height - 8] });
  }
  const cx = ((s.write_cursor || 0) / rows) * width;
  shapes.push({ fill: "#222", poly: [[cx - 5, 0], [cx + 5, 0], [cx, 6]] });
  shapes.push({ fill: "#222", rect: [Math.round(cx), 6, 1, height - 6] });
  return shapes;
}

/** The legend under the strip (it names the last sample when there is one). */
export function stripLegend(sample) {
  const smp = sample || {};
  const sampled = smp.indices ? ` · red: the ${smp.indices.length} indices of the last sample (${smp.unique} distinct)` : "";
  return `blue: stored rows · ▼ write cursor${sampled}`;
}

/** The page to open for a click `x` px into a strip `width` px wide, or null past the stored items. */
export function stripClickPage(x, width, summary, pageSize) {
  const s = summary || {};
  const index = stripIndex(x, s.items_per_row || 1, Math.max(1, s.rows || 1), width);
  return index < (s.length || 0) ? pageOf(index, pageSize || 50) : null;
}

/** The priority histogram in a `width` x `height` box: {shapes, caption}, or null without priorities. */
export function histogramView(histogram, width, height) {
  const hg = histogram || {};
  if (!(hg.counts && hg.counts.length)) return null;
  const shapes = histogramBars(hg.counts, hg.edges, width, height - 2).map((b) => ({ fill: "#6baed6", rect: [b.x, b.y, b.w, b.h] }));
  const caption = `${hg.count} items · min ${statText(hg.min)} · mean ${statText(hg.mean)} · max ${statText(hg.max)}`;
  return { shapes, caption };
}

/** The page of stored items: {columns, rows: [{index, cls, title, cells}], info, index, atFirst, atLast}.
 *  A row is `rlb-rp-hit` when the last sample drew it (its title says how often) and `rlb-rp-newest`
 *  when it holds the row written last; cls and title are null otherwise. */
export function pageView(page, sample) {
  const p = page || {};
  const start = p.start ?? 0, stop = p.stop ?? 0;
  const hits = sampledIn((sample || {}).indices, start, stop);
  const perRow = p.items_per_row || 1;
  const rows = (p.rows || []).map((cells, r) => {
    const index = start + r;
    const count = hits.get(index) || 0;
    const newest = p.newest_row != null && Math.floor(index / perRow) === p.newest_row;
    const cls = [count ? "rlb-rp-hit" : "", newest ? "rlb-rp-newest" : ""].filter(Boolean).join(" ");
    return { index, cls: cls || null, title: count ? `sampled ${count}×` : (newest ? "newest row" : null), cells };
  });
  const pages = p.pages || 1, index = p.index ?? 0;
  const info = `items ${start}–${Math.max(start, stop - 1)} of ${(p.total ?? 0).toLocaleString()} · page ${index + 1} of ${pages.toLocaleString()}`;
  return { columns: p.columns || [], rows, info, index, atFirst: index <= 0, atLast: index >= pages - 1 };
}

/** The page a pager button opens: "first" | "prev" | "next" | "last", from the current page. */
export function pagerTarget(action, page) {
  const p = page || {};
  const index = p.index ?? 0, pages = p.pages || 1;
  const target = { first: 0, prev: index - 1, next: index + 1, last: pages - 1 }[action];
  return clampIndex(target, pages);
}

/** The message of the Sample button: a whole batch size of at least 1 (32 when the field is unusable). */
export function sampleRequest(batchField) {
  return { type: "sample", batch_size: Math.max(1, Math.floor(Number(batchField) || 32)) };
}

/** The status text while a request of type `type` waits for the kernel. */
export function pendingText(type) {
  return type === "sample" ? "sampling…" : type === "refresh" ? "reading the buffer…" : "loading…";
}
