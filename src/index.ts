/** Library API: everything the CLI does, importable. */
export { LogitlensError, UsageError } from './errors.js';
export { readConfig, parseConfig, openWeights, type Gpt2Config, type Gpt2Weights } from './model/checkpoint.js';
export { readSafetensorsHeader, readTensorF32, encodeSafetensors } from './model/safetensors.js';
export { buildGpt2Graph, GRAPH_IO, OPSET } from './model/onnx/gpt2.js';
export { buildLensHead, LENS_IO } from './lens/head.js';
export { buildOnnxFolder, prepareModelFolder, cacheRoot, inspectModelFolder } from './model/store.js';
export { LoadedModel, loadOrt, type ForwardResult, type LensRows, type LensRowsResult, type SessionTuning } from './model/runtime.js';
export { loadTokenizer, displayToken, type Gpt2Tokenizer, type TokenInfo } from './model/tokenizer.js';
export {
  analyzePrompt, buildReport, lensCells, validateTargets, tokenizePrompt, resolvePosition, validateLayers, validateK,
  type LensOptions, type LensReport, type LayerStats, type TopEntry, type TargetEntry, type Cell, type CellStats,
} from './lens/analyze.js';
export { resolveModel, listBuiltModels, removeBuiltModel, type ResolvedModel, type ResolveOptions } from './model/resolve.js';
export { resolveHubModel, hubCacheDir, isHubRepoId, listCachedHubModels, removeCachedHubModel, type HubOptions, type ResolvedHubModel } from './hub/index.js';
export { writeSyntheticCheckpoint, type SyntheticOptions } from './model/synthetic.js';
export {
  analyzePictures, attentionRows, validatePositions, validateAttentionLayers, GRID_DEFAULT_K,
  type PictureReport, type PictureOptions, type GridColumn, type GridCellStats, type AttentionEntry,
} from './lens/grid.js';
export { renderTable, terminalStyle, type TableStyle } from './render/table.js';
export { renderGrid, type GridRenderOptions } from './render/grid.js';
export { renderAttention } from './render/attention.js';
export { renderTargetTrajectories, sparkline } from './render/sparkline.js';
export { renderHtml, type HtmlOptions } from './render/html.js';
export { renderSvg, type SvgOptions } from './render/svg.js';
export { shadeScale, colormap, SHADE_KINDS, type ShadeKind, type ShadeScale } from './render/shade.js';
export { escapeXml } from './render/escape.js';
export { lensBatch, tokenizeTruncated, type LensRequest, type LensOpts } from './lens/analyze.js';
export {
  readLines, parseItems, isError, type BatchItem, type PromptItem, type ErrorItem, type InputFormat, type RawLine, type ParseOptions,
} from './batch/input.js';
export { analyzeBatch, lockIn, DEFAULT_BATCH_SIZE, type BatchOptions, type BatchRecord, type PromptRecord } from './batch/run.js';
export { jsonlObject, jsonlLine, csvField, CsvWriter } from './batch/output.js';
export { SummaryAccumulator, renderSummary, type BatchSummary, type LayerSummary, type TargetSummary } from './batch/summary.js';
