// Number and shape formatting shared by the views (pure; tested with node --test).

/** Compact number: integers as is, others with `digits` significant digits; NaN/inf spelled out. */
export function formatNumber(x, digits = 4) {
  if (x === null || x === undefined) return "";
  if (typeof x === "bigint") return x.toString();
  if (typeof x === "boolean") return x ? "True" : "False";
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return x.toExponential(Math.max(0, digits - 1));
  return String(Number(x.toPrecision(digits)));
}

/** Shape as Python prints a tuple: [] -> "()", [4] -> "(4,)", [2, 3] -> "(2, 3)". */
export function formatShape(shape) {
  const dims = Array.from(shape || []);
  if (dims.length === 1) return `(${dims[0]},)`;
  return `(${dims.join(", ")})`;
}

/** Byte count for people: 1536 -> "1.5 KiB". */
export function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
