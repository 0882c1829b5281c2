// Positions in arrays, shared by the views: clamp an index into a range (steps, envs, pages), and
// binary-search a sorted array (episode ends, kept frame steps, a chart's x values). Pure
// (widgets/tests/indices.test.mjs).

/** `i` rounded and clamped into [0, count - 1]; 0 when `i` is not finite or there are no slots. */
export function clampIndex(i, count) {
  if (!Number.isFinite(i)) return 0;
  return Math.min(Math.max(0, Math.round(i)), Math.max(0, (count || 0) - 1));
}

/** How many values of ascending `sorted` are below `x`: the first index whose value is >= x. */
export function lowerBound(sorted, x) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the value of ascending `sorted` nearest to `x`, the earlier one on a tie; -1 when empty. */
export function nearestIndex(sorted, x) {
  const n = sorted.length;
  if (n === 0) return -1;
  const i = Math.min(lowerBound(sorted, x), n - 1);
  return i > 0 && Math.abs(x - sorted[i - 1]) <= Math.abs(sorted[i] - x) ? i - 1 : i;
}
