import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeRollout, initialPlotKey, orderSeries, deriveEnv, rolloutSubtitle, stepText, valueCell, frameAt,
  frameCaption, prefetchSpan, plotSpecs, timelineShapes,
} from "../lib/rollout_view.js";

const spec = (name, key, size = 1, kind = "float", format = "f4") => ({ name, key, size, kind, format, shape: size > 1 ? [size] : [], dtype: "float32" });

/** Two envs x 4 steps: reward r[b, t] = 10 b + t, env 0 ends after step 1 (terminated), env 1 after step 2 (truncated). */
function rollout(extra = {}) {
  const specs = [
    spec("next.reward", ["next", "reward"]),
    spec("next.done", ["next", "done"], 1, "bool"),
    spec("next.terminated", ["next", "terminated"], 1, "bool"),
    spec("observation", ["observation"], 2),
    spec("action", ["action"], 1, "int"),
  ];
  const reward = new Float32Array([0, 1, 2, 3, 10, 11, 12, 13]);
  const done = new Float32Array([0, 1, 0, 0, 0, 0, 1, 0]);
  const term = new Float32Array([0, 1, 0, 0, 0, 0, 0, 0]);
  const obs = new Float32Array(16).map((_, i) => i / 2);
  const action = new Float32Array([0, 1, 2, 1, 2, 2, 0, 0]);
  const meta = {
    batch: 2, steps: 4, series: specs, reward: "next.reward", done: "next.done", terminated: "next.terminated",
    bytes: 2048, ...extra,
  };
  return decodeRollout(meta, [reward, done, term, obs, action].map((a) => new DataView(a.buffer)));
}

test("decodeRollout decodes each series and indexes them by name", () => {
  const r = rollout();
  assert.equal(r.batch, 2);
  assert.equal(r.steps, 4);
  assert.equal(r.index.get("observation"), 3);
  assert.deepEqual(Array.from(r.data[0]), [0, 1, 2, 3, 10, 11, 12, 13]);
  assert.equal(r.frames, null);
  assert.equal(r.perEnv, 0);
  const withFrames = rollout({ frames: { count: 4, steps: [0, 2], width: 30, height: 20 } });
  assert.equal(withFrames.perEnv, 2);
  assert.equal(rollout({ frames: { count: 0, steps: [] } }).frames, null);  // no frame kept: nothing to draw
  const empty = decodeRollout(null, null);
  assert.deepEqual([empty.batch, empty.steps, empty.specs.length], [1, 0, 0]);
});

test("initialPlotKey: Python's choice, else the first series", () => {
  assert.equal(initialPlotKey(rollout()), "next.reward");
  assert.equal(initialPlotKey(rollout({ plot_key: "action" })), "action");
  assert.equal(initialPlotKey(decodeRollout({}, [])), undefined);
});

test("orderSeries: action, then the step, then next (reward and flags first), nested after plain", () => {
  const specs = [
    spec("next.observation", ["next", "observation"]), spec("observation", ["observation"]),
    spec("next.truncated", ["next", "truncated"]), spec("next.reward", ["next", "reward"]),
    spec("pixels.deep", ["pixels", "deep", "x"]), spec("action", ["action"]), spec("done", ["done"]),
  ];
  assert.deepEqual(orderSeries(specs).map((s) => s.name),
    ["action", "done", "observation", "pixels.deep", "next.reward", "next.truncated", "next.observation"]);
  assert.equal(specs[0].name, "next.observation");  // the input is not reordered
});

test("deriveEnv: per-env columns, episode ends and the per-episode return", () => {
  const r = rollout();
  const d0 = deriveEnv(r, 0);
  assert.deepEqual(Array.from(d0.reward), [0, 1, 2, 3]);
  assert.deepEqual(d0.ends, [1]);
  assert.deepEqual(Array.from(d0.ret), [0, 1, 2, 5]);  // restarts after the done step 1
  const d1 = deriveEnv(r, 1);
  assert.deepEqual(d1.ends, [2]);
  assert.deepEqual(Array.from(d1.ret), [10, 21, 33, 13]);
  assert.deepEqual(Array.from(d1.terminated), [0, 0, 0, 0]);
  const bare = deriveEnv(rollout({ reward: null, done: "missing", terminated: undefined }), 0);
  assert.deepEqual([bare.reward, bare.done, bare.terminated, bare.ret, bare.ends], [null, null, null, null, []]);
});

test("rolloutSubtitle names episode ends, total reward, frames and size", () => {
  const r = rollout({ frames: { count: 1, steps: [0], width: 30, height: 20 } });
  assert.equal(rolloutSubtitle(r, deriveEnv(r, 1), 1), "1 episode end in env 1 · reward 46 in total · 1 frame at 30×20 · 2.0 KiB");
  const single = decodeRollout({ ...r.meta, batch: 1, frames: null, bytes: 0 }, []);
  const d = { reward: new Float64Array([1, NaN, 2]), done: new Float64Array([1, 0, 1]), ends: [0, 2] };
  assert.equal(rolloutSubtitle(single, d, 0), "2 episode ends · reward 3 in total");
  assert.equal(rolloutSubtitle(single, { reward: null, done: null, ends: [] }, 0), "");
});

test("stepText counts from 0 and names the episode once there are episode ends", () => {
  assert.equal(stepText(0, 40, []), "step 0 / 39");
  assert.equal(stepText(1, 40, [1, 30]), "step 1 / 39 · episode 0");  // the done step closes its episode
  assert.equal(stepText(2, 40, [1, 30]), "step 2 / 39 · episode 1");
  assert.equal(stepText(35, 40, [1, 30]), "step 35 / 39 · episode 2");
  assert.equal(stepText(0, 0, []), "step 0 / 0");
});

test("valueCell formats by kind and flags a true bool", () => {
  const r = rollout();
  const byName = (n) => r.specs[r.index.get(n)];
  assert.deepEqual(valueCell(r, byName("observation"), 1, 2), { text: "[6, 6.5]", flag: false });
  assert.deepEqual(valueCell(r, byName("action"), 0, 2), { text: "2", flag: false });
  assert.deepEqual(valueCell(r, byName("next.done"), 0, 1), { text: "true", flag: true });
  assert.deepEqual(valueCell(r, byName("next.done"), 0, 2), { text: "false", flag: false });
  assert.deepEqual(valueCell(r, byName("next.reward"), 1, 3), { text: "13", flag: false });
});

test("frameAt picks the nearest kept frame of the env (env-major store); captions say which", () => {
  const frames = { steps: [0, 4, 8] };
  assert.deepEqual(frameAt(frames, 3, 0, 4), { index: 1, step: 4 });
  assert.deepEqual(frameAt(frames, 3, 1, 5), { index: 4, step: 4 });
  assert.deepEqual(frameAt(frames, 3, 1, 6), { index: 4, step: 4 });  // a tie goes to the earlier frame
  assert.deepEqual(frameAt(frames, 3, 2, 39), { index: 8, step: 8 });
  assert.equal(frameCaption(4, 4), "frame at step 4");
  assert.equal(frameCaption(4, 5), "nearest frame: step 4");
  assert.deepEqual(prefetchSpan(true), [8, 0]);
  assert.deepEqual(prefetchSpan(false), [3, 2]);
});

test("plotSpecs: reward and return share the episode boundaries; the key plot splits components", () => {
  const r = rollout();
  const d = deriveEnv(r, 0);
  const p = plotSpecs(r, d, 0, "observation", "#eee");
  assert.equal(p.reward.title, "reward");
  assert.deepEqual(p.reward.boundaries, [1]);
  assert.equal(p.ret.series[0].values, d.ret);
  assert.deepEqual(p.ret.series[0].breakAfter, [1]);  // no line joins two episodes
  assert.equal(p.ret.textColor, "#eee");
  assert.equal(p.key.title, "observation");
  assert.deepEqual(p.key.series.map((s) => s.label), ["[0]", "[1]"]);
  assert.deepEqual(Array.from(p.key.series[1].values), [0.5, 1.5, 2.5, 3.5]);
  assert.equal(p.key.series[0].stepped, false);
  const action = plotSpecs(r, d, 1, "action", "#000").key;
  assert.deepEqual([action.series[0].label, action.series[0].stepped], ["action", true]);
  assert.deepEqual(Array.from(action.series[0].values), [2, 2, 0, 0]);
  assert.equal(plotSpecs(r, d, 0, "not a key", "#000").key, null);
  const noReward = plotSpecs(r, { reward: null, ret: null, ends: [] }, 0, "action", "#000");
  assert.deepEqual([noReward.reward, noReward.ret], [null, null]);
});

test("plotSpecs shows at most 8 components of a wide key and says so", () => {
  const wide = spec("wide", ["wide"], 12);
  const r = decodeRollout({ batch: 1, steps: 2, series: [wide] }, [new DataView(new Float32Array(24).buffer)]);
  const p = plotSpecs(r, deriveEnv(r, 0), 0, "wide", "#000");
  assert.equal(p.key.series.length, 8);
  assert.equal(p.key.title, "wide (first 8 of 12)");
});

test("timelineShapes: one 2 px tick per episode end, under the range thumb, coloured by how it ended", () => {
  const d = { ends: [0, 5, 10], terminated: new Float64Array(11).map((_, t) => (t === 5 ? 1 : 0)) };
  const shapes = timelineShapes(d, 11, 216);  // 200 px of thumb travel: 20 px per step
  assert.deepEqual(shapes.map((s) => s.rect), [[7, 0, 2, 6], [107, 0, 2, 6], [207, 0, 2, 6]]);
  assert.deepEqual(shapes.map((s) => s.fill), ["#ff9800", "#d62728", "#ff9800"]);
  assert.deepEqual(timelineShapes({ ends: [0], terminated: null }, 1, 100, 4), [{ fill: "#ff9800", rect: [7, 0, 2, 4] }]);
  assert.deepEqual(timelineShapes({ ends: [], terminated: null }, 5, 100), []);
});
