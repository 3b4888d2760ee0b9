/**
 * phi3-ts: a Phi-3 runtime in TypeScript. Library entry point.
 */
export { loadModel, Model, ModelSequence, ContextLengthError, GgufError, UnsupportedModelError, TokenizerError, OutOfMemoryError, CrewError, TemplateError, NonFiniteLogitsError } from './api.js';
export type {
  LoadOptions, LoadStats, Generation, GenerateOptions, GenerationStats, GeneratedChunk, FinishReason, SamplingOptions, ChatMessage,
  BackendName, BenchResult, Phi3Config, ConfigWarning,
} from './api.js';
export type { ChatOptions } from './engine.js';
export { ToolsUnsupportedError, ToolCallStream, toolCallGrammar, type FunctionTool, type ToolChoice, type ToolCall } from './generate/tools.js';
export { GGUFFile, BufferSource, type ByteSource } from './gguf/reader.js';
export { openGguf, FileSource } from './gguf/file-source.js';
export { writeGguf, serializeGguf } from './gguf/writer.js';
export { GGMLType, GGML_TYPES } from './quant/ggml-type.js';
export { dequantize, dequantizeRow } from './quant/dequantize.js';
export { quantize, quantizeRow } from './quant/quantize.js';
export { SpmTokenizer } from './tokenizer/spm.js';
export { writeSynth, PRESETS } from './synth/synth.js';
export { Sampler } from './generate/sampler.js';
export { RefOps } from './backend/ref/ops.js';
export { NUMERICS, numericsByName, type Numerics, type NumericsName } from './backend/numerics.js';
export { compareLogits, formatCompare, type CompareReport, type CompareOptions } from './compare/compare.js';
export { readLogitsFile, type LogitsRows } from './compare/logits-file.js';
export { SafetensorsFile, SafetensorsError, writeSafetensors } from './safetensors/safetensors.js';
export { exportHf } from './convert/export-hf.js';
export { perplexity, type PerplexityResult, type PerplexityOptions } from './perplexity/perplexity.js';
export { convertHf, cachedHfGguf, isHfFolder, CONVERT_TYPES, type ConvertOptions, type ConvertResult } from './convert/convert-hf.js';
export { HfFolder, HfFolderError } from './hf/folder.js';
export { parseSentencePiece, serializeSentencePiece, SentencePieceError } from './hf/sentencepiece.js';
export { demoModelPath, DEMO_MODEL_NAME } from './demo-model.js';
export { parseGbnf, GrammarState, GrammarError } from './grammar/gbnf.js';
export { jsonSchemaGrammar, jsonObjectGrammar } from './grammar/json-schema.js';
