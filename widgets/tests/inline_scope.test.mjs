// rlbench/widgets/_static.py inlines every helper a view imports into ONE module, so the top-level
// names of a view and of all the helpers it pulls in share one scope. A name declared twice there is a
// SyntaxError in the browser (a blank widget), not in these node tests, which load files one by one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const WIDGETS = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const IMPORT = /^\s*import\s*\{[^}]*\}\s*from\s*["'](\.{1,2}\/[\w./-]+\.js)["']\s*;?\s*$/;
const DECL = /^(?:export\s+)?(?:async\s+)?(?:function\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)/;

/** Files in inlining order (dependencies first, each once), the view last. */
function inlined(file, seen = new Set(), out = []) {
  seen.add(file);
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (/^\s*import\b/.test(line)) {
      const m = IMPORT.exec(line);
      assert.ok(m, `${file}: only \`import { a } from "./x.js";\` on one line is inlined: ${line.trim()}`);
      const dep = resolve(dirname(file), m[1]);
      if (!seen.has(dep)) inlined(dep, seen, out);
    }
  }
  out.push(file);
  return out;
}

const views = readdirSync(WIDGETS).filter((f) => f.endsWith(".js")).map((f) => join(WIDGETS, f));

test("every view is found", () => {
  const names = views.map((f) => f.slice(WIDGETS.length + 1)).sort();
  for (const v of ["replay_inspector.js", "rollout_inspector.js", "spec_inspector.js", "training_monitor.js"]) {
    assert.ok(names.includes(v), v);
  }
});

for (const view of views) {
  test(`${view.slice(WIDGETS.length + 1)}: inlined top-level names are unique`, () => {
    const owner = new Map();
    for (const file of inlined(view)) {
      const src = readFileSync(file, "utf8");
      if (file !== view) assert.ok(!/^export\s+default\b/m.test(src), `${file}: a helper has no default export`);
      for (const line of src.split("\n")) {
        const m = DECL.exec(line);
        if (!m) continue;
        const where = file.slice(WIDGETS.length + 1);
        assert.ok(!owner.has(m[1]), `${m[1]} is declared in ${owner.get(m[1])} and in ${where}`);
        owner.set(m[1], where);
      }
    }
    assert.ok(owner.has("render"));
  });
}
