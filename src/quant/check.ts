/**
 * Finding Inf and NaN in weights: every element of F32/F16/BF16 data, and every float field (d, dmin,
 * m) of quantized blocks — the only places a quantized block can hold one. Used at load, so that
 * a damaged file is an error naming the tensor instead of finite, plausible, wrong logits.
 */
import { GGML_TYPES, GGMLType } from './ggml-type.js';

/** index of the first element (float types) or block (quantized) holding Inf or NaN in `bytes`, or -1 */
export function firstNonFinite(type: GGMLType, bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case GGMLType.F32:
      for (let i = 0; i + 4 <= bytes.length; i += 4) if ((dv.getUint32(i, true) & 0x7f800000) === 0x7f800000) return i / 4;
      return -1;
    case GGMLType.F16:
      for (let i = 0; i + 2 <= bytes.length; i += 2) if ((dv.getUint16(i, true) & 0x7c00) === 0x7c00) return i / 2;
      return -1;
    case GGMLType.BF16:
      for (let i = 0; i + 2 <= bytes.length; i += 2) if ((dv.getUint16(i, true) & 0x7f80) === 0x7f80) return i / 2;
      return -1;
  }
  const t = GGML_TYPES.get(type)!;
  const floats = t.fields.filter((f) => f.kind === 'f16' || f.kind === 'f32');
  for (let b = 0, o = 0; o + t.typeSize <= bytes.length; b++, o += t.typeSize)
    for (const f of floats)
      for (let k = 0; k < f.bytes; k += f.kind === 'f16' ? 2 : 4) {
        const bad = f.kind === 'f16' ? (dv.getUint16(o + f.offset + k, true) & 0x7c00) === 0x7c00 : (dv.getUint32(o + f.offset + k, true) & 0x7f800000) === 0x7f800000;
        if (bad) return b;
      }
  return -1;
}

/** how many f16 scale fields (d, dmin, m) the blocks in `bytes` hold, and how many of them are subnormal or zero */
export function scaleStats(type: GGMLType, bytes: Uint8Array): { scales: number; subnormal: number; zero: number } {
  const t = GGML_TYPES.get(type)!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const halves = t.fields.filter((f) => f.kind === 'f16');
  let scales = 0, subnormal = 0, zero = 0;
  if (t.blockSize === 1) return { scales, subnormal, zero }; // F32 / F16 / BF16: no scales
  for (let o = 0; o + t.typeSize <= bytes.length; o += t.typeSize)
    for (const f of halves)
      for (let k = 0; k < f.bytes; k += 2) {
        const h = dv.getUint16(o + f.offset + k, true) & 0x7fff;
        scales++;
        if (h === 0) zero++;
        else if (h < 0x0400) subnormal++;
      }
  return { scales, subnormal, zero };
}
