// Binary arrays from the kernel. The Python side packs a tensor as
// {dtype: "float32", shape: [..], data: <bytes>}; ipywidgets sends `data` as a binary buffer and
// it arrives as a DataView (a base64 string is decoded the same way by the offline page).

const TYPED = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

/** View the bytes of a DataView/ArrayBuffer/typed array as a typed array of `dtype` (no copy when aligned). */
export function typedView(data, dtype) {
  const Ctor = TYPED[dtype];
  if (!Ctor) throw new Error(`unsupported dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(TYPED).join(", ")}`);
  let buffer;
  let offset = 0;
  let length;
  if (data instanceof ArrayBuffer) {
    buffer = data;
    length = data.byteLength;
  } else if (ArrayBuffer.isView(data)) {
    buffer = data.buffer;
    offset = data.byteOffset;
    length = data.byteLength;
  } else {
    throw new Error(`expected binary data (DataView or ArrayBuffer), got ${typeof data}`);
  }
  if (length % Ctor.BYTES_PER_ELEMENT !== 0) {
    throw new Error(`${length} bytes is not a whole number of ${dtype} values`);
  }
  if (offset % Ctor.BYTES_PER_ELEMENT !== 0) {
    // typed arrays need aligned offsets: copy the bytes out once
    const copy = new Uint8Array(length);
    copy.set(new Uint8Array(buffer, offset, length));
    return new Ctor(copy.buffer);
  }
  return new Ctor(buffer, offset, length / Ctor.BYTES_PER_ELEMENT);
}

/** Decode a packed array {dtype, shape, data} into {values, shape}. */
export function unpackArray(packed) {
  const values = typedView(packed.data, packed.dtype);
  const shape = Array.from(packed.shape || [values.length]);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (expected !== values.length) {
    throw new Error(`packed array: shape [${shape}] needs ${expected} values, got ${values.length}`);
  }
  return { values, shape };
}

/** Decode standard base64 into a DataView (for the offline page). */
export function base64ToDataView(text) {
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
  return new DataView(bytes.buffer);
}
