import { LogitlensError, UsageError } from '../errors.js';
import type { ForwardResult, LoadedModel } from '../model/runtime.js';
import {
  buildReport, lensCells, resolvePosition, tokenizePrompt, validateK, validateLayers, validateTargets,
  type Cell, type LensReport, type TargetEntry, type TopEntry,
} from './analyze.js';

/** Top-1 per cell is what the grid shows; more is asked for explicitly (-k) or for hover text. */
export const GRID_DEFAULT_K = 1;

export interface GridCellStats {
  layer: number;
  top: TopEntry[];
  entropy: number;
  kl_to_final: number;
  targets: TargetEntry[];
}

export interface GridColumn {
  position: number;
  token: string;
  layers: GridCellStats[];
}

export interface AttentionEntry {
  /** block l (1..n_layer): the attention inside the block that produces residual layer l */
  layer: number;
  /** heads[h][key]: probability that the analyzed position attends to input token `key` (0 after it) */
  heads: number[][];
}

/** The version-1 report plus the grid columns and/or attention rows that were asked for. */
export interface PictureReport extends LensReport {
  positions?: GridColumn[];
  attention?: AttentionEntry[];
}

export interface PictureOptions {
  position?: number;
  layers?: number[];
  finalNorm?: boolean;
  k?: number;
  targets?: number[];
  /** compute the grid; `positions` narrows its columns (inclusive, absolute positions) */
  grid?: boolean;
  positions?: { from: number; to: number };
  /** attention blocks to report (1..n_layer) */
  attention?: number[];
}

/** Grid columns to compute: the whole prompt unless a range narrows it. */
export function validatePositions(range: { from: number; to: number } | undefined, nTokens: number): number[] {
  if (!range) return Array.from({ length: nTokens }, (_, p) => p);
  const { from, to } = range;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from || to >= nTokens) {
    throw new UsageError(`--positions ${from}-${to} does not fit the prompt, which has positions 0..${nTokens - 1}; use e.g. --positions 0-${Math.min(nTokens - 1, 20)}`);
  }
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export function validateAttentionLayers(layers: number[], nLayer: number): number[] {
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 1 || l > nLayer) {
      throw new UsageError(`--attention ${l}: attention lives in blocks 1..${nLayer} (layer 0 is the embeddings and has none); use e.g. --attention ${nLayer} or --attention all`);
    }
  }
  return [...new Set(layers)].sort((a, b) => a - b);
}

/** Attention rows of one query position, copied out of the [batch, head, seq, seq] tensors. */
export function attentionRows(model: LoadedModel, fwd: ForwardResult, row: number, position: number, nTokens: number, layers: number[]): AttentionEntry[] {
  const H = model.config.n_head;
  const S = fwd.seq;
  if (fwd.attention.length === 0) {
    throw new LogitlensError(`the ONNX graph in ${model.dir} does not expose attention probabilities; rebuild it with logitlens export (or clear the cache entry) to use --attention`);
  }
  return layers.map((layer) => {
    const a = fwd.attention[layer - 1];
    const heads = Array.from({ length: H }, (_, h) => {
      const base = ((row * H + h) * S + position) * S;
      return Array.from(a.subarray(base, base + nTokens));
    });
    return { layer, heads };
  });
}

/**
 * The lens at every (layer, position) of a prompt, plus the analyzed position's report and
 * attention. One forward pass; the lens head runs in ONNX Runtime over chunks of cells, so only
 * top-k, entropy and KL per cell ever reach JavaScript.
 */
export async function analyzePictures(model: LoadedModel, prompt: string, opts: PictureOptions = {}, modelId = model.dir): Promise<PictureReport> {
  const c = model.config;
  const ids = tokenizePrompt(model, prompt);
  const position = resolvePosition(opts.position, ids.length);
  const layers = validateLayers(opts.layers, c.n_layer);
  const k = validateK(opts.k ?? (opts.grid ? GRID_DEFAULT_K : undefined), c.vocab_size);
  const targets = validateTargets(opts.targets, c.vocab_size);
  const finalNorm = opts.finalNorm ?? true;
  const columns = opts.grid ? validatePositions(opts.positions, ids.length) : [];
  const attLayers = opts.attention ? validateAttentionLayers(opts.attention, c.n_layer) : [];

  const fwd = await model.forward([ids], attLayers.map((l) => l - 1));
  // copy out the few attention rows now and drop the [layers, heads, seq, seq] tensors before the
  // lens runs: at 512 tokens they are the largest thing held in JavaScript
  const attention = attLayers.length ? attentionRows(model, fwd, 0, position, ids.length, attLayers) : undefined;
  fwd.attention = [];
  // position-major order: a chunk of cells then shares few positions, so the lens head computes
  // few reference (last-layer) distributions for KL per chunk
  const positions = [...new Set([...columns, position])].sort((a, b) => a - b);
  const cells: Cell[] = positions.flatMap((p) => layers.map((layer) => ({ layer, position: p })));
  const { stats, selfCheck } = await lensCells(model, fwd, 0, ids.length, cells, { finalNorm, k, targets });
  const at = (p: number) => stats.slice(positions.indexOf(p) * layers.length, (positions.indexOf(p) + 1) * layers.length);

  const report: PictureReport = buildReport(model, { prompt, ids, position, finalNorm, stats: at(position), selfCheck }, modelId);
  if (opts.grid) {
    report.positions = columns.map((p) => ({
      position: p,
      token: model.tokenizer.token(ids[p]).text,
      layers: at(p).map((s) => ({ layer: s.cell.layer, top: s.top, entropy: s.entropy, kl_to_final: s.kl_to_final, targets: s.targets })),
    }));
  }
  if (attention) report.attention = attention;
  return report;
}
