import { test } from "node:test";
import assert from "node:assert/strict";
import { ACTOR_COLUMNS, actorColumns, actorRows, clusterCharts, clusterStatus } from "../lib/cluster_view.js";

const packed = (values) => ({ dtype: "float64", shape: [values.length], data: new DataView(new Float64Array(values).buffer) });
const metric = (steps, values) => ({ step: packed(steps), value: packed(values), count: steps.length });

const ACTORS = [
  { actor: 1, node: "bbbb", fps: 1234.5678, batches: 3, policy_lag_mean: 1 / 3, policy_lag_max: 1, restarts: 1 },
  { actor: 0, node: "<b>aa", fps: 1000, batches: 1, policy_lag_mean: 2, policy_lag_max: 2, restarts: 0 },
];

test("actorRows sorts by actor, formats numbers and flags restarted actors", () => {
  const rows = actorRows(ACTORS);
  assert.deepEqual(rows.map((r) => r.index), [0, 1]);
  assert.equal(rows[0].cells.length, ACTOR_COLUMNS.length);
  assert.deepEqual(rows[0].cells, ["0", "<b>aa", "1000", "1", "2", "2", "0"]); // text: escaped by h() later
  assert.deepEqual(rows[1].cells, ["1", "bbbb", "1235", "3", "0.333", "1", "1"]);
  assert.deepEqual(rows.map((r) => r.cls), ["", "rlb-cm-restarted"]);
  assert.deepEqual(actorRows(undefined), []);
});

test("the node column is left out when no actor has a node (the recipe's scalars carry none)", () => {
  const noNodes = ACTORS.map((r) => ({ ...r, node: null }));
  assert.deepEqual(actorColumns(noNodes).map(([name]) => name), ["actor", "frames/s", "batches", "lag mean", "lag max", "restarts"]);
  assert.deepEqual(actorRows(noNodes)[0].cells, ["0", "1000", "1", "2", "2", "0"]);
  assert.equal(actorColumns(ACTORS).length, ACTOR_COLUMNS.length);
});

test("clusterCharts splits per-actor frames/s, the lag and the other metrics", () => {
  const charts = clusterCharts({
    "actor/1/fps": metric([10], [5]), "loss/critic": metric([10, 20], [1, 0.5]), "actor/0/fps": metric([10], [7]),
    "actor/0/batches": metric([10], [1]), "actor/0/policy_lag_mean": metric([10], [0.5]),
  });
  assert.deepEqual(charts.fps.map((s) => s.name), ["actor 0", "actor 1"]);
  assert.deepEqual(Array.from(charts.fps[0].ys), [7]);
  assert.deepEqual(charts.lag.map((s) => s.name), ["actor 0"]); // no learner-side policy_lag: each actor's
  assert.deepEqual(charts.others.map((s) => s.name), ["loss/critic"]); // batches stay in the table
  const withLag = clusterCharts({ policy_lag: metric([1, 2], [0, 1]), "actor/0/policy_lag_mean": metric([1], [0]) });
  assert.deepEqual(withLag.lag.map((s) => s.name), ["policy_lag"]);
  assert.deepEqual(clusterCharts(undefined), { fps: [], lag: [], others: [] });
});

test("clusterStatus sums the throughput and weighs the lag by batches", () => {
  assert.match(clusterStatus([]), /^waiting for actor stats/);
  // (2 * 1 + 1/3 * 3) / 4 = 0.75
  assert.equal(clusterStatus(ACTORS), "2 actors · 2235 frames/s in all · lag 0.75 (max 2) · 1 restart");
  assert.equal(clusterStatus([{ actor: 0, fps: 3, batches: 0 }]), "1 actor · 3 frames/s in all");
});
