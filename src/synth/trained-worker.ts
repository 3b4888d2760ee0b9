/** A Piscina task for writeSynthAsync (synth.ts): one weight matrix drawn and quantized as trained.ts does */
import { move } from 'piscina';
import { Rng } from '../util/rng.js';
import { trainedTensor, type TrainedJob } from './trained.js';

export default function drawTensor(j: TrainedJob): Uint8Array {
  const bytes = trainedTensor(j.type, j.rows, j.cols, j.rms, new Rng(j.seed));
  return move(bytes) as Uint8Array;
}
