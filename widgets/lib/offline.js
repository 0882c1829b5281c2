// The offline page's stand-in for the Jupyter widget model. save_html (and the text/html fallback)
// embed a view's ESM, CSS and state; this module rebuilds the model and calls the view's render(),
// so the same view code runs with or without a kernel.
import { base64ToDataView } from "./buffers.js";

/**
 * A model with the surface anywidget views use: get/set/on/off/send/save_changes.
 * `send` has no kernel to reach: it calls `onSend` (the boot code shows a note).
 */
export function createOfflineModel(state, onSend) {
  const data = { ...state, _rlb_offline: true };
  const listeners = new Map();
  const emit = (name, ...args) => {
    for (const fn of [...(listeners.get(name) || [])]) fn(...args);
  };
  return {
    get: (key) => data[key],
    set(key, value) {
      const old = data[key];
      data[key] = value;
      if (old !== value) {
        emit(`change:${key}`, value);
        emit("change", key, value);
      }
    },
    on(name, fn) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(fn);
    },
    off(name, fn) {
      if (!name) listeners.clear();
      else if (!fn) listeners.delete(name);
      else listeners.get(name)?.delete(fn);
    },
    send(content) {
      if (onSend) onSend(content);
    },
    save_changes() {},
  };
}

/** Put decoded binary buffers back at their paths in the state (the inverse of _remove_buffers). */
export function restoreBuffers(state, paths, buffers) {
  paths.forEach((path, i) => {
    let obj = state;
    for (const key of path.slice(0, -1)) obj = obj[key];
    obj[path[path.length - 1]] = buffers[i];
  });
  return state;
}

/** Render the inspector whose root element has data-rlb-id=`id` from its embedded payload. */
export async function bootOffline(id) {
  const roots = [...document.querySelectorAll(`[data-rlb-id="${id}"]`)].filter((n) => !n.dataset.rlbBooted);
  const root = roots[0];
  if (!root) return;
  root.dataset.rlbBooted = "1";
  const payload = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  const host = root.querySelector(".rlb-offline-host");
  try {
    const state = restoreBuffers(payload.state, payload.buffer_paths, payload.buffers.map(base64ToDataView));
    const style = document.createElement("style");
    style.textContent = payload.css;
    root.prepend(style);
    const note = root.querySelector(".rlb-offline-note");
    const model = createOfflineModel(state, () => {
      note.textContent = "This is a saved copy of the inspector: buttons that need the Python kernel do nothing here.";
      note.hidden = false;
    });
    const url = URL.createObjectURL(new Blob([payload.esm], { type: "text/javascript" }));
    const mod = await import(url);
    URL.revokeObjectURL(url);
    const widget = typeof mod.default === "function" ? await mod.default() : mod.default;
    if (widget.initialize) await widget.initialize({ model });
    host.replaceChildren();
    await widget.render({ model, el: host });
    root.dataset.rlbRendered = "1";
  } catch (err) {
    host.textContent = `rlbench inspector could not render offline: ${err}`;
  }
}
