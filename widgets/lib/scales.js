// The numbers behind every chart: data extents, plottable domains, linear scales, round tick values
// and min/max decimation. Both chart kinds use these and nothing else for that maths: the SVG line
// charts of the training monitor (svgplot.js) and the canvas plots of the rollout view
// (plot_canvas.js). Pure: numbers in, numbers out (widgets/tests/scales.test.mjs).

/** [min, max] of the finite values in one or more arrays (typed arrays or any iterables of numbers),
 *  or null when there are none. */
export function extent(...arrays) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const values of arrays) {
    for (const v of values) {
      const x = Number(v);
      if (!Number.isFinite(x)) continue;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  return lo === Infinity ? null : [lo, hi];
}

/** A domain a scale can use, from an `extent()`: [0, 1] for null; a flat [v, v] widened on each side
 *  by `relative * |v|`, or by `absolute` where that is 0; any other range as it is. */
export function padRange(range, relative = 0.1, absolute = 1) {
  if (!range) return [0, 1];
  const [lo, hi] = range;
  if (lo !== hi) return [lo, hi];
  const pad = Math.abs(lo) * relative || absolute;
  return [lo - pad, hi + pad];
}

/** Round tick values covering [lo, hi]: every multiple of the step inside it, the step being the
 *  smallest 1, 2 or 5 times a power of ten that is at least (hi - lo) / count. [lo] for a flat range,
 *  [] for a non-finite one; a reversed range is read as [hi, lo]. */
export function niceTicks(lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  // `raw` carries float noise ((0.017 - 0.011) / 6 is 0.0010000000000000002): a step within 1e-9 of it is enough
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * mag;
  const ticks = [];
  // k * step, not a running sum: no drift, and the tick at 0 is exactly 0 (never 1.4e-17)
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) {
    ticks.push(Number((k * step).toPrecision(12)) || 0);
  }
  return ticks;
}

/** The linear map from domain [d0, d1] to range [r0, r1], with `.invert(p)` going back. A flat (or
 *  non-finite) domain maps everything to the middle of the range, and inverts to d0. */
export function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0;
  const width = r1 - r0;
  if (span === 0 || !Number.isFinite(span)) {
    const f = () => (r0 + r1) / 2;
    f.invert = () => d0;
    return f;
  }
  const f = (v) => r0 + ((v - d0) / span) * width;
  f.invert = (p) => (width === 0 ? d0 : d0 + ((p - r0) / width) * span);
  return f;
}

/** Which points of `values` to draw so that a line through them keeps the shape of the whole curve
 *  when it is `buckets` pixels wide. Returns indices into `values`, ascending, each once: all of them
 *  when there are at most `2 * buckets`; otherwise the values are cut into `buckets` equal runs of
 *  consecutive indices and each run gives the index of its smallest and of its largest finite value
 *  (spikes survive), or its first index when it has no finite value (a gap stays a gap), and the
 *  first and last indices are always kept (the line spans the same x range). */
export function decimate(values, buckets) {
  const n = values.length;
  const b = Math.max(1, Math.floor(buckets));
  if (n <= 2 * b) return Array.from({ length: n }, (_, i) => i);
  const keep = [0];
  const add = (i) => { if (i !== keep[keep.length - 1]) keep.push(i); };
  for (let k = 0; k < b; k += 1) {
    const start = Math.floor((k * n) / b);
    const end = Math.floor(((k + 1) * n) / b);
    let iMin = -1;
    let iMax = -1;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = start; i < end; i += 1) {
      const v = Number(values[i]);
      if (!Number.isFinite(v)) continue;
      if (v < lo) { lo = v; iMin = i; }
      if (v > hi) { hi = v; iMax = i; }
    }
    if (iMin < 0) add(start);
    else if (iMin <= iMax) { add(iMin); add(iMax); } else { add(iMax); add(iMin); }
  }
  add(n - 1);
  return keep;
}
