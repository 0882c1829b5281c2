// A stand-in 2D canvas context for the node tests: every method call is recorded as
// [name, ...args] and every property set as ["=name", value]; `measureText` answers 6 px a
// character. Not a test file itself (it is imported by *.test.mjs).

export function recordingContext() {
  const calls = [];
  return new Proxy({ calls }, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (prop === "measureText") return (s) => ({ width: 6 * s.length });
      return (...args) => calls.push([prop, ...args]);
    },
    set(target, prop, value) { calls.push([`=${String(prop)}`, value]); return true; },
  });
}
