import { LogitlensError, UsageError } from '../errors.js';
import type { ForwardResult, LoadedModel, LensRowsResult } from '../model/runtime.js';
import type { TokenInfo } from '../model/tokenizer.js';

export interface LensOptions {
  /** analyzed position; negative counts from the end (default -1: the last token) */
  position?: number;
  /** layers to report, 0..n_layer (default all) */
  layers?: number[];
  /** apply ln_f before unembedding (default true) */
  finalNorm?: boolean;
  /** top entries per layer (default 10) */
  k?: number;
  /** token ids whose probability and rank to report */
  targets?: number[];
}

export interface TopEntry {
  id: number;
  token: string;
  prob: number;
  logprob: number;
  logit: number;
  /** hex of the raw bytes, present only when the token is not valid UTF-8 on its own */
  bytes?: string;
}

export interface TargetEntry {
  id: number;
  token: string;
  prob: number;
  logprob: number;
  /** 1 = top; tokens with equal logits share the best rank */
  rank: number;
}

export interface LayerStats {
  layer: number;
  top: TopEntry[];
  entropy: number;
  kl_to_final: number;
  targets: TargetEntry[];
}

/** Version-1 JSON document (see README, "JSON output"). */
export interface LensReport {
  version: 1;
  model: { id: string; n_layer: number; n_embd: number; n_head: number; n_positions: number; vocab_size: number };
  prompt: string;
  tokens: Array<{ id: number; text: string }>;
  position: number;
  final_norm: boolean;
  layers: LayerStats[];
  /** largest |lens logit - model logit| at the last layer, last position (the self-check) */
  self_check_max_abs_diff: number;
}

export const DEFAULT_K = 10;
/** Lens rows per ONNX Runtime call: bounds the [rows, vocab] intermediates to ~100 MB. */
export const LENS_CHUNK_ROWS = 64;
/**
 * Target ranks compare every target with the whole vocabulary: a [rows, targets, vocab] float
 * tensor. Past a few targets, that (not [rows, vocab]) sets how many rows one call may take.
 */
const RANK_BUDGET_ELEMS = 64 * 4 * 50257;

/** Resolve a possibly negative position against a prompt length. */
export function resolvePosition(position: number | undefined, nTokens: number): number {
  const p = position ?? -1;
  const abs = p < 0 ? nTokens + p : p;
  if (!Number.isInteger(p) || abs < 0 || abs >= nTokens) {
    throw new UsageError(`--position ${p} is outside the prompt, which has ${nTokens} token${nTokens === 1 ? '' : 's'} (valid: 0..${nTokens - 1} or -${nTokens}..-1)`);
  }
  return abs;
}

export function validateLayers(layers: number[] | undefined, nLayer: number): number[] {
  if (!layers) return Array.from({ length: nLayer + 1 }, (_, l) => l);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l > nLayer) {
      throw new UsageError(`layer ${l} does not exist: this model has layers 0..${nLayer} (0 = embeddings)`);
    }
  }
  return [...new Set(layers)].sort((a, b) => a - b);
}

export function validateK(k: number | undefined, vocab: number): number {
  const v = k ?? DEFAULT_K;
  if (!Number.isInteger(v) || v < 1 || v > vocab) throw new UsageError(`-k must be a whole number from 1 to ${vocab} (got ${v})`);
  return v;
}

export function validateTargets(targets: number[] | undefined, vocab: number): number[] {
  for (const t of targets ?? []) {
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new UsageError(`target id ${t} is outside the vocabulary (0..${vocab - 1})`);
  }
  return targets ?? [];
}

export function tokenizePrompt(model: LoadedModel, prompt: string): number[] {
  return tokenizeTruncated(model, prompt).ids;
}

/**
 * Tokenize; a prompt longer than the context is an error (`fix` says what to do) unless `truncate`
 * says which end to drop (left keeps the last tokens, right the first). `dropped` counts the cut tokens.
 */
export function tokenizeTruncated(
  model: LoadedModel, prompt: string, truncate?: 'left' | 'right', fix = 'shorten it',
): { ids: number[]; dropped: number } {
  if (prompt.trim() === '') throw new UsageError('the prompt is empty; give some text to analyze, e.g. logitlens "The capital of France is"');
  const ids = model.tokenizer.encode(prompt);
  if (ids.length === 0) throw new UsageError('the prompt encodes to no tokens; give some text to analyze');
  const max = model.config.n_positions;
  if (ids.length <= max) return { ids, dropped: 0 };
  if (!truncate) throw new UsageError(`the prompt is ${ids.length} tokens long but the model's context is ${max} tokens; ${fix}`);
  return { ids: truncate === 'left' ? ids.slice(ids.length - max) : ids.slice(0, max), dropped: ids.length - max };
}

export interface Cell {
  layer: number;
  position: number;
}

export interface CellStats {
  cell: Cell;
  top: TopEntry[];
  entropy: number;
  kl_to_final: number;
  targets: TargetEntry[];
  /** top-1 logit minus top-2 logit (NaN when k covers the whole vocabulary) */
  gap: number;
}

/** The cells one prompt (one row of a forward result) wants read through the lens. */
export interface LensRequest {
  row: number;
  /** real tokens in the row; the self-check compares the lens at its last token with the model's logits */
  nTokens: number;
  cells: Cell[];
  /** token ids to report for this request; default: the shared `targets` option */
  targets?: number[];
}

export interface LensOpts {
  finalNorm: boolean;
  k: number;
  targets: number[];
  /** lens rows per ONNX Runtime call (default LENS_CHUNK_ROWS) */
  chunkRows?: number;
}

/**
 * Lens statistics for any (layer, position) cells of one row of a forward result. Also checks
 * that the lens at the last layer reproduces the model's own logits at the row's last token.
 */
export async function lensCells(
  model: LoadedModel,
  fwd: ForwardResult,
  row: number,
  nTokens: number,
  cells: Cell[],
  opts: LensOpts,
): Promise<{ stats: CellStats[]; selfCheck: number }> {
  return (await lensBatch(model, fwd, [{ row, nTokens, cells }], opts))[0];
}

/**
 * lensCells for several rows of one forward result at once: the cells of all requests share
 * ONNX Runtime calls (a batch of prompts fills the lens head's matrix product), and each request
 * is self-checked once, in the chunk that holds its first cell.
 */
export async function lensBatch(
  model: LoadedModel,
  fwd: ForwardResult,
  requests: LensRequest[],
  opts: LensOpts,
): Promise<Array<{ stats: CellStats[]; selfCheck: number }>> {
  const { n_embd: E, n_layer: L, vocab_size: V } = model.config;
  const S = fwd.seq;
  const vec = (row: number, layer: number, pos: number) => fwd.hidden[layer].subarray((row * S + pos) * E, (row * S + pos + 1) * E);
  const kEff = Math.min(opts.k + 1, V); // one extra entry gives the top-1/top-2 gap
  const chunkRows = opts.chunkRows ?? LENS_CHUNK_ROWS;
  const out = requests.map(() => ({ stats: [] as CellStats[], selfCheck: 0 }));
  const all: Array<{ req: number; cell: Cell; first: boolean }> = [];
  requests.forEach((r, req) => {
    if (r.cells.length === 0) throw new UsageError('no layers or positions selected; select at least one');
    r.cells.forEach((cell, i) => all.push({ req, cell, first: i === 0 }));
  });
  const nTargets = new Set([...opts.targets, ...requests.flatMap((r) => r.targets ?? [])]).size;
  const step = Math.max(1, Math.min(chunkRows, Math.floor(RANK_BUDGET_ELEMS / (Math.max(1, nTargets) * V))));
  for (let start = 0; start < all.length; start += step) {
    const chunk = all.slice(start, start + step);
    const checks = chunk.filter((c) => c.first).map((c) => c.req);
    // ref rows are keyed by (request, position): the last-layer residual there defines P_model
    const refKey = (req: number, pos: number) => `${req}:${pos}`;
    const refs = new Map<string, { req: number; pos: number; i: number }>();
    const ref = (req: number, pos: number): number => {
      const key = refKey(req, pos);
      let hit = refs.get(key);
      if (!hit) refs.set(key, (hit = { req, pos, i: refs.size }));
      return hit.i;
    };
    const refIndex = chunk.map((c) => ref(c.req, c.cell.position));
    const checkIndex = checks.map((req) => ref(req, requests[req].nTokens - 1));
    const hidden = new Float32Array(chunk.length * E);
    chunk.forEach((c, i) => hidden.set(vec(requests[c.req].row, c.cell.layer, c.cell.position), i * E));
    const refHidden = new Float32Array(refs.size * E);
    for (const r of refs.values()) refHidden.set(vec(requests[r.req].row, L, r.pos), r.i * E);
    const checkLogits = new Float32Array(checks.length * V);
    checks.forEach((req, i) => checkLogits.set(fwd.logits.subarray(requests[req].row * V, (requests[req].row + 1) * V), i * V));
    // one target list per call: the union of what the chunk's requests ask for
    const targetsOf = (req: number) => requests[req].targets ?? opts.targets;
    const union = [...new Set(chunk.flatMap((c) => targetsOf(c.req)))];
    const column = new Map(union.map((t, j) => [t, j]));
    const res = await model.lens({
      hidden,
      finalNorm: opts.finalNorm,
      refHidden,
      refIndex,
      k: kEff,
      targets: union,
      checkLogits: checks.length ? checkLogits : undefined,
      checkIndex: checks.length ? checkIndex : undefined,
    });
    checks.forEach((req, i) => {
      const diff = res.checkDiff[i];
      const tol = 1e-4 * Math.max(1, res.checkScale[i]);
      if (!(diff <= tol)) {
        throw new LogitlensError(
          `self-check failed: the lens at the last layer differs from the model's own logits by ${diff} (tolerance ${tol}); the ONNX graphs in ${model.dir} do not belong together: rebuild them`,
        );
      }
      out[req].selfCheck = diff;
    });
    chunk.forEach((c, i) => {
      out[c.req].stats.push(cellStats(model, res, i, opts.k, targetsOf(c.req).map((id) => ({ id, column: column.get(id)! })), union.length, c.cell));
    });
  }
  return out;
}

/** `targets` says where each of this cell's targets is among the call's `nTargets` target columns. */
function cellStats(
  model: LoadedModel, r: LensRowsResult, i: number, k: number,
  targets: Array<{ id: number; column: number }>, nTargets: number, cell: Cell,
): CellStats {
  const kk = r.k;
  const top: TopEntry[] = [];
  for (let j = 0; j < k; j++) {
    const id = Number(r.topIds[i * kk + j]);
    const lp = r.topLogprobs[i * kk + j];
    top.push({ id, ...tokenFields(model.tokenizer.token(id)), prob: Math.exp(lp), logprob: lp, logit: r.topLogits[i * kk + j] });
  }
  const T = nTargets;
  const tg: TargetEntry[] = targets.map(({ id, column: j }) => {
    const lp = r.targetLogprobs[i * T + j];
    return { id, token: model.tokenizer.token(id).text, prob: Math.exp(lp), logprob: lp, rank: Number(r.targetRanks[i * T + j]) + 1 };
  });
  const gap = kk > k ? r.topLogits[i * kk] - r.topLogits[i * kk + 1] : NaN;
  return { cell, top, entropy: r.entropy[i], kl_to_final: r.kl[i], targets: tg, gap };
}

function tokenFields(t: TokenInfo): { token: string; bytes?: string } {
  return t.complete ? { token: t.text } : { token: t.text, bytes: Buffer.from(t.bytes).toString('hex') };
}

/** The version-1 report from one prompt's lens statistics (single and batch paths alike). */
export function buildReport(
  model: LoadedModel,
  r: { prompt: string; ids: number[]; position: number; finalNorm: boolean; stats: CellStats[]; selfCheck: number },
  modelId: string,
): LensReport {
  const c = model.config;
  return {
    version: 1,
    model: { id: modelId, n_layer: c.n_layer, n_embd: c.n_embd, n_head: c.n_head, n_positions: c.n_positions, vocab_size: c.vocab_size },
    prompt: r.prompt,
    tokens: r.ids.map((id) => ({ id, text: model.tokenizer.token(id).text })),
    position: r.position,
    final_norm: r.finalNorm,
    layers: r.stats.map((s) => ({ layer: s.cell.layer, top: s.top, entropy: s.entropy, kl_to_final: s.kl_to_final, targets: s.targets })),
    self_check_max_abs_diff: r.selfCheck,
  };
}

/** The logit lens of one prompt at one position, as the version-1 report. */
export async function analyzePrompt(model: LoadedModel, prompt: string, opts: LensOptions = {}, modelId = model.dir): Promise<LensReport> {
  const c = model.config;
  const ids = tokenizePrompt(model, prompt);
  const position = resolvePosition(opts.position, ids.length);
  const layers = validateLayers(opts.layers, c.n_layer);
  const k = validateK(opts.k, c.vocab_size);
  const targets = validateTargets(opts.targets, c.vocab_size);
  const finalNorm = opts.finalNorm ?? true;
  const fwd = await model.forward([ids]);
  const { stats, selfCheck } = await lensCells(model, fwd, 0, ids.length, layers.map((layer) => ({ layer, position })), { finalNorm, k, targets });
  return buildReport(model, { prompt, ids, position, finalNorm, stats, selfCheck }, modelId);
}
