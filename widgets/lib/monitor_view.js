// What the training monitor shows, from its synced `series`: each metric's points and the status line.
// Pure (no DOM); widgets/tests/monitor_view.test.mjs.
import { unpackArray } from "./buffers.js";
import { formatNumber } from "./format.js";

/** The metrics in arrival order, [{name, xs, ys}] (typed arrays over the packed buffers, no copy when aligned). */
export function metricSeries(series) {
  return Object.entries(series || {}).map(([name, entry]) => ({ name, xs: unpackArray(entry.step).values, ys: unpackArray(entry.value).values }));
}

/** "3 metrics · step 1200" (the latest step any metric reached), or what the monitor waits for. */
export function monitorStatus(metrics) {
  if (!metrics.length) return "waiting for log_scalar(...)";
  let lastStep = null;
  for (const { xs } of metrics) if (xs.length) lastStep = Math.max(lastStep ?? -Infinity, xs[xs.length - 1]);
  return `${metrics.length} metric${metrics.length === 1 ? "" : "s"} · step ${formatNumber(lastStep)}`;
}
