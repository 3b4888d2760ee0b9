/**
 * Weights that look like a trained model's, for benchmark files: quantized blocks whose scales are
 * distributed as in real files (the random-block synth draws the scale fields themselves, so every
 * block's f16 scale is a normal number, where real Q6_K and Q8_0 files hold subnormal ones).
 *
 * A matrix [rows, cols] is drawn in F32 as
 *   w[r, c] = rms · rowScale[r] · colScale[c] · z,   z ~ N(0, 1)
 * with log-normal row scales (σ = 0.3), 1 % of input channels (columns) 2–6× larger (the outlier
 * channels of trained transformers), and one element in 10⁴ an outlier of 4–10 σ; then it is quantized
 * by the project's ggml-exact quantizers (src/quant/quantize.ts), as llama-quantize quantizes an F32
 * checkpoint. Keep the random-block synth (synth.ts randomTensor) for tests: it is much faster.
 */
import { GGMLType } from '../quant/ggml-type.js';
import { storeAs } from '../quant/quantize.js';
import type { Rng } from '../util/rng.js';
import { erf } from '../vision/phi3v.js';

let normalTable: Float32Array | undefined;
/** Φ⁻¹((i + ½) / 65536) for i < 65536: a standard normal from 16 random bits (|z| ≤ 4.3) */
function normals(): Float32Array {
  if (normalTable) return normalTable;
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) {
    const p = (i + 0.5) / 65536;
    let lo = -6, hi = 6;
    for (let k = 0; k < 48; k++) {
      const mid = (lo + hi) / 2;
      if (0.5 * (1 + erf(mid / Math.SQRT2)) < p) lo = mid;
      else hi = mid;
    }
    t[i] = (lo + hi) / 2;
  }
  return (normalTable = t);
}

/** the F32 values of a `rows` × `cols` matrix (row-major, as GGUF stores [cols, rows]) of RMS ≈ rms */
export function trainedValues(rows: number, cols: number, rms: number, rng: Rng): Float32Array {
  const z = normals();
  const colScale = new Float32Array(cols).fill(1);
  for (let c = 0; c < cols; c++) if (rng.next() < 0.01) colScale[c] = 2 + 4 * rng.next();
  // normalise so that the matrix's RMS stays ≈ rms whatever the outlier channels add
  const colRms = Math.sqrt(colScale.reduce((a, s) => a + s * s, 0) / cols);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = (rms / colRms) * Math.exp(0.3 * z[rng.u32() & 0xffff]! - 0.045); // E[e^(0.3 z)] = e^0.045
    const o = r * cols;
    for (let c = 0; c < cols; c += 2) {
      const u = rng.u32();
      w[o + c] = s * colScale[c]! * z[u & 0xffff]!;
      if (c + 1 < cols) w[o + c + 1] = s * colScale[c + 1]! * z[u >>> 16]!;
    }
    if (rng.next() < cols / 1e4) {
      const c = rng.int(cols);
      w[o + c] = s * colScale[c]! * (rng.next() < 0.5 ? -1 : 1) * (4 + 6 * rng.next());
    }
  }
  return w;
}

/** trainedValues() stored as `type`: F32/F16/BF16 converted, quantized types by the ggml-exact quantizers */
export function trainedTensor(type: GGMLType, rows: number, cols: number, rms: number, rng: Rng): Uint8Array {
  return storeAs(type, trainedValues(rows, cols, rms, rng));
}

/** what a worker needs to draw one matrix (trained-worker.ts): the same bytes as on the main thread */
export interface TrainedJob {
  type: GGMLType;
  rows: number;
  cols: number;
  rms: number;
  seed: number;
}
