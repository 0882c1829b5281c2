// Pure plotting math shared by every chart (no DOM; tested with node --test).

/** [min, max] of the finite values, or null when there are none. */
export function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    const x = Number(v);
    if (!Number.isFinite(x)) continue;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return lo === Infinity ? null : [lo, hi];
}

/** About `count` round tick values covering [lo, hi] (1/2/5 x 10^k steps). */
export function niceTicks(lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) return [lo];
  if (lo > hi) [lo, hi] = [hi, lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

/** A linear map from [d0, d1] to [r0, r1]; a flat domain maps to the middle of the range. */
export function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0;
  if (span === 0 || !Number.isFinite(span)) return () => (r0 + r1) / 2;
  return (x) => r0 + ((x - d0) / span) * (r1 - r0);
}

/**
 * Keep at most `maxPoints` points of (xs, ys) while keeping the shape of the curve: each bucket
 * contributes its minimum and maximum (so spikes survive), in x order. Returns {xs, ys} arrays.
 */
export function decimate(xs, ys, maxPoints = 1000) {
  const n = Math.min(xs.length, ys.length);
  if (n <= maxPoints) return { xs: Array.from(xs).slice(0, n), ys: Array.from(ys).slice(0, n) };
  const buckets = Math.max(1, Math.floor(maxPoints / 2));
  const size = n / buckets;
  const outX = [];
  const outY = [];
  for (let b = 0; b < buckets; b += 1) {
    const start = Math.floor(b * size);
    const end = Math.min(n, Math.floor((b + 1) * size));
    let iMin = start;
    let iMax = start;
    for (let i = start; i < end; i += 1) {
      if (ys[i] < ys[iMin]) iMin = i;
      if (ys[i] > ys[iMax]) iMax = i;
    }
    for (const i of iMin <= iMax ? [iMin, iMax] : [iMax, iMin]) {
      if (outX.length && outX[outX.length - 1] === Number(xs[i]) && i === iMax && iMin === iMax) continue;
      outX.push(Number(xs[i]));
      outY.push(Number(ys[i]));
    }
  }
  return { xs: outX, ys: outY };
}

/**
 * SVG path data for a polyline through the points, mapped by sx/sy. Non-finite y values break the
 * line (a gap, not a drop to zero).
 */
export function linePath(xs, ys, sx, sy) {
  const parts = [];
  let pen = "M";
  for (let i = 0; i < Math.min(xs.length, ys.length); i += 1) {
    const y = Number(ys[i]);
    if (!Number.isFinite(y)) {
      pen = "M";
      continue;
    }
    parts.push(`${pen}${sx(Number(xs[i])).toFixed(1)},${sy(y).toFixed(1)}`);
    pen = "L";
  }
  return parts.join("");
}

/** Index of the point whose x is closest to `x` in sorted `xs` (binary search); -1 if empty. */
export function nearestIndex(xs, x) {
  let lo = 0;
  let hi = xs.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) return lo - 1;
  return lo;
}
