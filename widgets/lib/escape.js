// Escaping and safe DOM building. Every string a view shows goes through `h()` (textContent)
// or `escapeHtml()`: keys, env names and reprs come from user code and may contain markup.

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape a value for use inside HTML text or a quoted attribute. */
export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * Create an element: h("div", {class: "x", onclick: fn}, "text", child).
 * Strings and numbers become text nodes (never parsed as HTML); null/false children are skipped.
 * Attributes starting with "on" are listeners; "style" may be an object; others go through
 * setAttribute (so a hostile value stays a value).
 */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "style" && typeof value === "object") {
      Object.assign(node.style, value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  appendChildren(node, children);
  return node;
}

function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** True when the view runs from a saved page (save_html / nbconvert) without a kernel. */
export function isOffline(model) {
  return Boolean(model.get("_rlb_offline"));
}
