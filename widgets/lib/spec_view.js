// What the spec inspector shows, from its synced fields: the tree rows (collapsible), the header and
// the state of its buttons, the sample table and the check_env_specs result. Pure (no DOM); the view
// turns these descriptions into elements (widgets/tests/spec_view.test.mjs).
import { formatShape } from "./format.js";

/** Tree rows in display order, [{node, id, depth, isGroup, open}]; children of a collapsed node (its
 *  id in `collapsed`) are left out. A group's id is its key path, so it stays collapsed across redraws. */
export function flattenTree(groups, collapsed) {
  const rows = [];
  const walk = (node, path, depth) => {
    const id = path.join("\u0000");
    const isGroup = Array.isArray(node.children);
    rows.push({ node, id, depth, isGroup, open: isGroup && !collapsed.has(id) });
    if (isGroup && !collapsed.has(id)) {
      for (const child of node.children) walk(child, [...path, child.key], depth + 1);
    }
  };
  for (const group of groups) walk({ ...group.node, key: group.name }, [group.name], 0);
  return rows;
}

/** `collapsed` with `id` toggled (a new set). */
export function toggleCollapsed(collapsed, id) {
  const next = new Set(collapsed);
  if (next.has(id)) next.delete(id);
  else next.add(id);
  return next;
}

/** Header and button state: {title, subtitle, checkDisabled, note}. `checkDisabled` and `note` are
 *  null where the view leaves them as they are (a saved copy keeps its own note and disabled buttons). */
export function specHeader({ title, batchSize, canCheck, offline }) {
  const batch = batchSize || [];
  return {
    title: title || "Specs",
    subtitle: batch.length ? `batch_size ${formatShape(batch)}` : "",
    checkDisabled: offline ? null : !canCheck,
    note: !offline && !canCheck ? "Check specs needs an env (this is a single spec)." : null,
  };
}

/** Whether "Check specs" is disabled once a check result arrives (while one runs), or null to leave it. */
export function checkButtonDisabled(check, canCheck, offline) {
  if (offline || !canCheck) return null;
  return Boolean(check && check.status === "running");
}

/** The random sample as table rows, [{key, shape, dtype, value}] (key: group[key]), or {error};
 *  null when nothing was sampled yet. */
export function sampleSummary(sample) {
  if (!sample || sample.status === "none") return null;
  if (sample.status === "error") return { error: `Sampling failed: ${sample.message}` };
  return {
    rows: sample.rows.map((r) => ({ key: r.key ? `${r.group}[${r.key}]` : r.group, shape: formatShape(r.shape), dtype: r.dtype, value: r.value })),
  };
}

/** The check_env_specs result: {status, badge: {text, cls}, note: {text, cls} | null, mismatches | null};
 *  null while no check ran. */
export function checkSummary(check) {
  if (!check || check.status === "idle") return null;
  const out = { status: check.status, badge: null, note: null, mismatches: null };
  if (check.status === "running") {
    out.badge = { text: "running…", cls: "rlb-badge" };
  } else if (check.status === "ok") {
    out.badge = { text: "passed", cls: "rlb-badge rlb-ok" };
    out.note = { text: `Reset and ${check.steps} random steps match every spec.`, cls: "rlb-note" };
  } else if (check.status === "mismatch") {
    const count = check.mismatches.length;
    out.badge = { text: `${count} mismatch${count === 1 ? "" : "es"}`, cls: "rlb-badge rlb-bad" };
    out.mismatches = check.mismatches;
  } else {
    out.badge = { text: check.status, cls: "rlb-badge rlb-bad" };
    out.note = { text: check.message || "", cls: "rlb-note rlb-warn" };
  }
  return out;
}
