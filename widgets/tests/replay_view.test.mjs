import { test } from "node:test";
import assert from "node:assert/strict";
import {
  statText, replayHeader, summaryCards, statsRows, stripShapes, stripLegend, stripClickPage, histogramView,
  pageView, pagerTarget, sampleRequest, pendingText,
} from "../lib/replay_view.js";

const EVIL = "<img src=x onerror=alert(1)>";

test("statText: a dash when missing, Python's nan/inf strings as they are, numbers compact", () => {
  assert.deepEqual([null, undefined, "nan", "-inf", 0.123456, 3].map(statText), ["–", "–", "nan", "-inf", "0.1235", "3"]);
});

test("replayHeader: default title and the storage · sampler · writer line", () => {
  assert.deepEqual(replayHeader("", { storage: "LazyTensorStorage", writer: "RoundRobinWriter" }),
    { title: "Replay buffer", subtitle: "LazyTensorStorage · RoundRobinWriter" });
  assert.deepEqual(replayHeader(EVIL, null), { title: EVIL, subtitle: "" });  // text: the view sets textContent
});

test("summaryCards: stored, cursor and shape always; batch size and priorities when there are any", () => {
  const plain = summaryCards({ length: 1200, capacity: 5000, fill: 0.24, write_cursor: 600, rows: 2500, items_per_row: 2, shape: [2500, 2], ndim: 2 });
  assert.deepEqual(plain.map((c) => c.label), ["stored", "write cursor", "storage shape"]);
  assert.equal(plain[0].value, (1200).toLocaleString());
  assert.equal(plain[0].extra, `of ${(5000).toLocaleString()} · 24.0%`);
  assert.deepEqual([plain[1].value, plain[1].extra], ["row 600", "of 2500 rows × 2"]);
  assert.deepEqual([plain[2].value, plain[2].extra], ["(2500, 2)", "ndim 2"]);
  const prio = summaryCards({ batch_size: 32, prioritized: true, alpha: 0.7, beta: 0.5, max_priority: 2.15432 });
  assert.deepEqual(prio.slice(3), [
    { label: "batch size", value: "32", extra: null },
    { label: "prioritized", value: "α 0.7 · β 0.5", extra: "max p 2.154" },
  ]);
  assert.deepEqual(summaryCards({}).map((c) => [c.value, c.extra]), [["0", "of 0 · 0%"], ["row 0", "of 0 rows"], ["()", "ndim 1"]]);
  assert.equal(summaryCards({ prioritized: true })[3].extra, null);
});

test("statsRows: dtype, shape, four statistics and the non-finite count (flagged when any)", () => {
  const [a, b] = statsRows([
    { name: EVIL, dtype: "float32", shape: [4], mean: 0.5, std: "nan", min: -1, max: 2, nonfinite: 3 },
    { name: "k" },
  ]);
  assert.equal(a.name, EVIL);
  assert.deepEqual(a.cells.map((c) => c.text), ["float32", "(4,)", "0.5", "nan", "-1", "2", "3"]);
  assert.deepEqual(a.cells.map((c) => c.cls), [null, "rlb-mono", "rlb-mono", "rlb-mono", "rlb-mono", "rlb-mono", "rlb-mono rlb-rp-bad"]);
  assert.deepEqual(b.cells.map((c) => c.text), ["", "", "–", "–", "–", "–", "0"]);
  assert.equal(b.cells[6].cls, "rlb-mono");
  assert.deepEqual(statsRows(undefined), []);
});

test("stripShapes: background, filled part, one tick per sampled row, write cursor", () => {
  const shapes = stripShapes({ rows: 10, len_rows: 4, write_cursor: 4, items_per_row: 2 }, { indices: [0, 1, 7, 7] }, 100, 22);
  assert.deepEqual(shapes[0], { fill: "#e9ecef", rect: [0, 6, 100, 14] });
  assert.deepEqual(shapes[1], { fill: "#9ecae1", rect: [0, 6, 40, 14] });
  // items 0 and 1 are row 0 (sampled twice), item 7 is row 3 (twice as well)
  assert.deepEqual(shapes.slice(2, 4), [
    { fill: "#d62728", alpha: 0.55 + 0.15 * 2, rect: [4, 6, 2, 14] },
    { fill: "#d62728", alpha: 0.55 + 0.15 * 2, rect: [34, 6, 2, 14] },
  ]);
  assert.deepEqual(shapes[4], { fill: "#222", poly: [[35, 0], [45, 0], [40, 6]] });
  assert.deepEqual(shapes[5], { fill: "#222", rect: [40, 6, 1, 16] });
  const once = stripShapes({ rows: 4, len_rows: 9 }, { indices: [2, 2, 2, 2, 2] }, 40, 22);
  assert.deepEqual(once[1].rect, [0, 6, 40, 14]);  // never fuller than the strip
  assert.equal(once[2].alpha, 1);  // sampled 5 times: opaque
  assert.equal(stripShapes({}, null, 50, 22).length, 4);  // nothing sampled, no ticks
});

test("stripLegend names the last sample", () => {
  assert.equal(stripLegend({}), "blue: stored rows · ▼ write cursor");
  assert.equal(stripLegend({ indices: [1, 2, 2], unique: 2 }),
    "blue: stored rows · ▼ write cursor · red: the 3 indices of the last sample (2 distinct)");
});

test("stripClickPage opens the page of the clicked row, nothing past the stored items", () => {
  const summary = { rows: 100, items_per_row: 1, length: 60 };
  assert.equal(stripClickPage(0, 200, summary, 50), 0);
  assert.equal(stripClickPage(110, 200, summary, 50), 1);  // row 55
  assert.equal(stripClickPage(130, 200, summary, 50), null);  // row 65 is empty
  assert.equal(stripClickPage(130, 200, { ...summary, items_per_row: 4, length: 400 }, 50), 5);  // item 260
  assert.equal(stripClickPage(110, 200, summary, undefined), 1);  // default page size 50
});

test("histogramView: bars as shapes and a caption; null without priorities", () => {
  const v = histogramView({ counts: [1, 4], edges: [0, 1, 2], count: 5, min: 0.1, mean: 1.25, max: 2 }, 300, 110);
  assert.deepEqual(v.shapes, [
    { fill: "#6baed6", rect: [0, 81, 149, 27] },
    { fill: "#6baed6", rect: [150, 0, 149, 108] },
  ]);
  assert.equal(v.caption, "5 items · min 0.1 · mean 1.25 · max 2");
  assert.equal(histogramView({}, 300, 110), null);
  assert.equal(histogramView({ counts: [] }, 300, 110), null);
  assert.equal(histogramView(undefined, 300, 110), null);
});

test("pageView marks sampled and newest rows and says where the page is", () => {
  const page = {
    index: 1, start: 4, stop: 8, pages: 3, total: 10, newest_row: 3, items_per_row: 2,
    columns: ["index", EVIL], rows: [["4", "a"], ["5", "b"], ["6", "c"], ["7", "d"]],
  };
  const v = pageView(page, { indices: [5, 5, 7, 9, 1] });
  assert.deepEqual(v.columns, ["index", EVIL]);
  assert.deepEqual(v.rows.map((r) => [r.index, r.cls, r.title]), [
    [4, null, null], [5, "rlb-rp-hit", "sampled 2×"], [6, "rlb-rp-newest", "newest row"], [7, "rlb-rp-hit rlb-rp-newest", "sampled 1×"],
  ]);
  assert.deepEqual(v.rows[1].cells, ["5", "b"]);
  assert.equal(v.info, "items 4–7 of 10 · page 2 of 3");
  assert.deepEqual([v.index, v.atFirst, v.atLast], [1, false, false]);
  const empty = pageView(undefined, undefined);
  assert.deepEqual([empty.rows, empty.columns, empty.info, empty.atFirst, empty.atLast], [[], [], "items 0–0 of 0 · page 1 of 1", true, true]);
});

test("pager targets stay within the pages", () => {
  const page = { index: 2, pages: 5 };
  assert.deepEqual(["first", "prev", "next", "last"].map((a) => pagerTarget(a, page)), [0, 1, 3, 4]);
  assert.equal(pagerTarget("prev", { index: 0, pages: 5 }), 0);
  assert.equal(pagerTarget("next", { index: 4, pages: 5 }), 4);
  assert.equal(pagerTarget("last", undefined), 0);
});

test("sampleRequest and pendingText", () => {
  assert.deepEqual(sampleRequest("64"), { type: "sample", batch_size: 64 });
  assert.deepEqual(sampleRequest("7.9"), { type: "sample", batch_size: 7 });
  assert.deepEqual(sampleRequest(""), { type: "sample", batch_size: 32 });
  assert.deepEqual(sampleRequest("-5"), { type: "sample", batch_size: 1 });
  assert.deepEqual(["sample", "refresh", "page"].map(pendingText), ["sampling…", "reading the buffer…", "loading…"]);
});
