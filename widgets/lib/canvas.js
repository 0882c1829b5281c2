// Canvas plumbing shared by the views: size a canvas for the screen's pixel ratio, paint a list of
// shapes that a pure helper described, and follow the width of a box. The helpers that decide what to
// draw return plain shape lists ({fill, alpha?, rect | poly}), so node tests check them without a canvas.

/** Size `canvas` to `width` x `height` CSS pixels at `ratio` device pixels each; returns its 2D context
 *  scaled so that drawing uses CSS pixels. Resizing also clears the canvas. */
export function fitCanvas(canvas, width, height, ratio = globalThis.devicePixelRatio || 1) {
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

/** The width to draw at inside a box `clientWidth` px wide (`fallback` while it is not laid out yet):
 *  the box less `inset`, never under `min`. */
export function fitWidth(clientWidth, min, inset = 0, fallback = 720) {
  return Math.max(min, Math.floor((clientWidth || fallback) - inset));
}

/** Paint shapes in order: `{fill, alpha?, rect: [x, y, w, h]}` or `{fill, alpha?, poly: [[x, y], ...]}`
 *  (a closed, filled polygon). */
export function paintShapes(ctx, shapes) {
  for (const s of shapes) {
    ctx.fillStyle = s.fill;
    ctx.globalAlpha = s.alpha ?? 1;
    if (s.rect) {
      ctx.fillRect(...s.rect);
    } else if (s.poly) {
      ctx.beginPath();
      s.poly.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y)));
      ctx.closePath();
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
}

/** Call `onChange(width)` when `measure()` moves by more than 4 px while `target` resizes (not on
 *  every sub-pixel change). Returns the function that stops watching; a no-op without ResizeObserver. */
export function watchWidth(target, measure, onChange) {
  if (typeof ResizeObserver === "undefined") return () => {};
  let last = 0;
  const observer = new ResizeObserver(() => {
    const w = measure();
    if (Math.abs(w - last) > 4) { last = w; onChange(w); }
  });
  observer.observe(target);
  return () => observer.disconnect();
}
