// What the cluster monitor shows, from its synced `actors` and `series`: the per-actor table, the chart
// series (frames/s of each actor, policy lag, the other metrics) and the status line.
// Pure (no DOM); widgets/tests/cluster_view.test.mjs.
import { formatNumber } from "./format.js";
import { metricSeries } from "./monitor_view.js";

/** Columns of the per-actor table: [header, field of an `actors` row, digits (null: shown as is)]. */
export const ACTOR_COLUMNS = [
  ["actor", "actor", null],
  ["node", "node", null],
  ["frames/s", "fps", 4],
  ["batches", "batches", null],
  ["lag mean", "policy_lag_mean", 3],
  ["lag max", "policy_lag_max", null],
  ["restarts", "restarts", null],
];

const ACTOR_METRIC = /^actor\/(\d+)\/(.+)$/;

/** The columns to show: all of ACTOR_COLUMNS, less "node" when no actor has one (the recipe's scalars carry none). */
export function actorColumns(actors) {
  const hasNode = (actors || []).some((row) => row.node !== null && row.node !== undefined && row.node !== "");
  return ACTOR_COLUMNS.filter(([, field]) => hasNode || field !== "node");
}

/** One row per actor, sorted by actor index: {index, cls, cells: [string]} (of actorColumns); restarts flagged. */
export function actorRows(actors) {
  const columns = actorColumns(actors);
  return [...(actors || [])]
    .sort((a, b) => Number(a.actor) - Number(b.actor))
    .map((row) => ({
      index: Number(row.actor),
      cls: Number(row.restarts) > 0 ? "rlb-cm-restarted" : "",
      cells: columns.map(([, field, digits]) => {
        const v = row[field];
        if (v === null || v === undefined) return "";
        return digits === null || typeof v !== "number" ? String(v) : formatNumber(v, digits);
      }),
    }));
}

/**
 * The charts' series: `fps` (one per actor, named "actor i"), `lag` (the learner's "policy_lag" when
 * logged, else each actor's mean lag) and `others` (every metric not about one actor, in arrival order).
 */
export function clusterCharts(series) {
  const fps = [];
  const actorLag = [];
  const others = [];
  let lag = null;
  for (const m of metricSeries(series)) {
    const match = ACTOR_METRIC.exec(m.name);
    if (match && match[2] === "fps") fps.push({ ...m, name: `actor ${match[1]}`, actor: Number(match[1]) });
    else if (match && match[2] === "policy_lag_mean") actorLag.push({ ...m, name: `actor ${match[1]}`, actor: Number(match[1]) });
    else if (match) continue; // batches, restarts...: in the table
    else if (m.name === "policy_lag") lag = m;
    else others.push(m);
  }
  const byActor = (a, b) => a.actor - b.actor;
  return { fps: fps.sort(byActor), lag: lag ? [lag] : actorLag.sort(byActor), others };
}

/** "2 actors · 5120 frames/s in all · lag 0.8 (max 2) · 1 restart", or what the monitor waits for. */
export function clusterStatus(actors) {
  const rows = actors || [];
  if (!rows.length) return "waiting for actor stats (log_actor_stats or actor/<i>/fps)";
  let fps = 0;
  let batches = 0;
  let lagSum = 0;
  let lagMax = 0;
  let restarts = 0;
  for (const r of rows) {
    fps += Number(r.fps) || 0;
    const b = Number(r.batches) || 0;
    batches += b;
    lagSum += (Number(r.policy_lag_mean) || 0) * b;
    lagMax = Math.max(lagMax, Number(r.policy_lag_max) || 0);
    restarts += Number(r.restarts) || 0;
  }
  const parts = [`${rows.length} actor${rows.length === 1 ? "" : "s"}`, `${formatNumber(fps, 4)} frames/s in all`];
  if (batches) parts.push(`lag ${formatNumber(lagSum / batches, 3)} (max ${formatNumber(lagMax)})`);
  if (restarts) parts.push(`${restarts} restart${restarts === 1 ? "" : "s"}`);
  return parts.join(" · ");
}
