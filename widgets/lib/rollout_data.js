// Pure helpers of the rollout inspector: decode the binary series, derive returns and episode
// boundaries, format values, and cache decoded frames. No DOM here, so `node --test` covers all of
// it (widgets/tests/rollout_data.test.mjs).
import { typedView } from "./buffers.js";

/** A series buffer (DataView, typed array or ArrayBuffer) as a Float32Array ("f4") or Float64Array
 *  ("f8"), through buffers.typedView: no copy when aligned (comm buffers can start at any byte
 *  offset; those are copied). Empty for a missing buffer. */
export function decodeSeries(view, format = "f4") {
  if (view == null) return format === "f8" ? new Float64Array(0) : new Float32Array(0);
  return typedView(view, format === "f8" ? "float64" : "float32");
}

/** Bytes of a DataView / typed array / ArrayBuffer as a Uint8Array view (no copy); empty for none. */
export function asBytes(view) {
  return view == null ? new Uint8Array(0) : typedView(view, "uint8");
}

/** Uint32 little-endian offsets table (count + 1 entries) from a DataView. */
export function decodeOffsets(view) {
  const bytes = asBytes(view);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(Math.floor(bytes.byteLength / 4));
  for (let i = 0; i < out.length; i++) out[i] = dv.getUint32(4 * i, true);
  return out;
}

/** The `n` values of env `env` at step `t` of a `[B, T, n]` series. */
export function stepValues(arr, size, steps, env, t) {
  const start = (env * steps + t) * size;
  return arr.subarray(start, start + size);
}

/** Component `c` of env `env` over time, as a Float64Array of length `steps`. */
export function column(arr, size, steps, env, c = 0) {
  const out = new Float64Array(steps);
  const base = env * steps * size + c;
  for (let t = 0; t < steps; t++) out[t] = arr[base + t * size];
  return out;
}

/** Steps after which an episode ended (`done[t]` true): boundaries drawn between t and t + 1. */
export function episodeEnds(done) {
  const ends = [];
  if (!done) return ends;
  for (let t = 0; t < done.length; t++) if (done[t]) ends.push(t);
  return ends;
}

/** Running return within each episode: restarts after every done step. NaN rewards count as 0. */
export function cumulativeReturn(reward, done) {
  const out = new Float64Array(reward.length);
  let acc = 0;
  for (let t = 0; t < reward.length; t++) {
    const r = reward[t];
    acc += Number.isFinite(r) ? r : 0;
    out[t] = acc;
    if (done && done[t]) acc = 0;
  }
  return out;
}

/** One value as text: bools as true/false, ints exactly, floats with 4 significant digits. */
export function formatValue(x, kind = "float") {
  if (kind === "bool") return x ? "true" : "false";
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (kind === "int") return String(Math.round(x));
  if (x === 0) return "0";
  const ax = Math.abs(x);
  if (ax >= 1e5 || ax < 1e-3) return x.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(x.toPrecision(4)));
}

/** A step's values as text: a scalar alone, a vector in brackets (long ones elided in the middle). */
export function formatValues(values, kind = "float", maxItems = 8) {
  const n = values.length;
  if (n === 1) return formatValue(values[0], kind);
  const items = [];
  if (n <= maxItems) {
    for (let i = 0; i < n; i++) items.push(formatValue(values[i], kind));
  } else {
    const head = Math.ceil((maxItems - 1) / 2), tail = maxItems - 1 - head;
    for (let i = 0; i < head; i++) items.push(formatValue(values[i], kind));
    items.push("…");
    for (let i = n - tail; i < n; i++) items.push(formatValue(values[i], kind));
  }
  return `[${items.join(", ")}]`;
}

/** Least-recently-used cache; `onEvict(value)` runs for dropped entries (e.g. ImageBitmap.close). */
export class LRUCache {
  constructor(capacity = 64, onEvict = null) {
    this.capacity = Math.max(1, capacity);
    this.onEvict = onEvict;
    this.map = new Map();
  }
  get size() { return this.map.size; }
  has(key) { return this.map.has(key); }
  get(key) {
    if (!this.map.has(key)) return undefined;
    const value = this.map.get(key);
    this.map.delete(key);  // re-insert: a Map iterates in insertion order, oldest first
    this.map.set(key, value);
    return value;
  }
  set(key, value) {
    if (this.map.has(key)) this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const [oldKey, oldValue] = this.map.entries().next().value;
      this.map.delete(oldKey);
      if (this.onEvict) this.onEvict(oldValue, oldKey);
    }
  }
  clear() {
    if (this.onEvict) for (const [k, v] of this.map) this.onEvict(v, k);
    this.map.clear();
  }
}

/** Decoded frames on demand: `get(i)` resolves to the decoded image of frame `i`, decoding each
 *  frame at most once while it stays in the LRU cache, and sharing in-flight decodes.
 *  `decode(bytes, mime)` is injected (createImageBitmap in the browser, a stub in tests). */
export class FrameStore {
  constructor({ data, offsets, mime = "image/jpeg", decode, capacity = 48 }) {
    this.data = asBytes(data);
    this.offsets = offsets instanceof Uint32Array ? offsets : decodeOffsets(offsets);
    this.mime = mime;
    this.decode = decode;
    this.cache = new LRUCache(capacity, (img) => { if (img && typeof img.close === "function") img.close(); });
    this.pending = new Map();
    this.decodes = 0;
    this.wanted = [];
    this.pumping = false;
  }
  get count() { return Math.max(0, this.offsets.length - 1); }
  bytesOf(i) {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`frame ${i} out of range [0, ${this.count})`);
    return this.data.subarray(this.offsets[i], this.offsets[i + 1]);
  }
  peek(i) { return this.cache.get(i); }
  get(i) {
    const hit = this.cache.get(i);
    if (hit !== undefined) return Promise.resolve(hit);
    if (this.pending.has(i)) return this.pending.get(i);
    this.decodes++;
    // a decoder that throws synchronously must still give a rejected promise, not an exception
    const p = new Promise((resolve) => resolve(this.decode(this.bytesOf(i), this.mime))).then((img) => {
      this.pending.delete(i);
      this.cache.set(i, img);
      return img;
    }, (err) => { this.pending.delete(i); throw err; });
    this.pending.set(i, p);
    return p;
  }
  /** Warm the cache around frame `i` (the next frames first: scrubbing and playback go forward).
   *  One frame at a time, so a frame the user asks for next waits for at most one background
   *  decode; a new call replaces the wish list of the previous one. */
  prefetch(i, ahead = 4, behind = 2) {
    const wanted = [];
    for (let k = 1; k <= ahead; k++) if (i + k < this.count) wanted.push(i + k);
    for (let k = 1; k <= behind; k++) if (i - k >= 0) wanted.push(i - k);
    this.wanted = wanted.filter((j) => !this.cache.has(j));
    if (!this.pumping) this._pump();
  }
  /** Drop the prefetch wish list (the decode already running finishes). */
  cancelPrefetch() { this.wanted = []; }
  async _pump() {
    this.pumping = true;
    try {
      while (this.wanted && this.wanted.length) {
        const j = this.wanted.shift();
        if (this.cache.has(j)) continue;
        try { await this.get(j); } catch { /* a bad frame shows its error when it is asked for */ }
      }
    } finally {
      this.pumping = false;
    }
  }
}
