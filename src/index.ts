/**
 * phi3-ts: a Phi-3 runtime in TypeScript. Library entry point.
 */
export { loadModel, Model, ContextLengthError, GgufError, UnsupportedModelError, TokenizerError, OutOfMemoryError, CrewError, TemplateError, NonFiniteLogitsError } from './api.js';
export type {
  LoadOptions, LoadStats, Generation, GenerateOptions, GenerationStats, GeneratedChunk, FinishReason, SamplingOptions, ChatMessage,
  BackendName, BenchResult, Phi3Config, ConfigWarning,
} from './api.js';
export { GGUFFile } from './gguf/reader.js';
export { writeGguf, serializeGguf } from './gguf/writer.js';
export { GGMLType, GGML_TYPES } from './quant/ggml-type.js';
export { dequantize, dequantizeRow } from './quant/dequantize.js';
export { quantize, quantizeRow } from './quant/quantize.js';
export { SpmTokenizer } from './tokenizer/spm.js';
export { writeSynth, PRESETS } from './synth/synth.js';
export { Sampler } from './generate/sampler.js';
