import { LogitlensError } from '../errors.js';
import {
  buildReport, lensBatch, resolvePosition, tokenizeTruncated, validateK, validateLayers, validateTargets, type LensReport,
} from '../lens/analyze.js';
import type { ForwardResult, LoadedModel } from '../model/runtime.js';
import { isError, type BatchItem, type ErrorItem, type PromptItem } from './input.js';

export interface BatchOptions {
  /** analyzed position; negative counts from each prompt's end (default -1) */
  position?: number;
  layers?: number[];
  finalNorm?: boolean;
  k?: number;
  /** token ids reported for every prompt (per-prompt targets are added after them) */
  targets?: number[];
  /** prompts per forward pass (default DEFAULT_BATCH_SIZE) */
  batchSize?: number;
  /** cap on batch × padded length, so long prompts make smaller batches (default DEFAULT_BATCH_TOKENS) */
  maxBatchTokens?: number;
  /** prompts read ahead and sorted by length together (default 4 batches) */
  window?: number;
  /** drop tokens beyond the context from this end instead of failing the line */
  truncate?: 'left' | 'right';
  /** lens rows per ONNX Runtime call */
  lensChunkRows?: number;
  /** `model.id` in the reports */
  modelId?: string;
  /** told once per kind of thing worth a warning (multi-token targets) */
  onWarning?: (msg: string) => void;
}

export interface PromptRecord {
  index: number;
  line: number;
  fields: Record<string, unknown>;
  report: LensReport;
  /** first reported layer from which the lens top-1 equals the model's final top-1 through the last; null if it never settles */
  lockInLayer: number | null;
  /** the model's own top-1 next token at the analyzed position */
  finalTop1: number;
  /** tokens cut off by --truncate */
  dropped: number;
}

export type BatchRecord = PromptRecord | ErrorItem;

export const DEFAULT_BATCH_SIZE = 32;
/** 32 prompts of 64 tokens: hidden states of a 12-layer 768-wide model stay near 80 MB per batch */
export const DEFAULT_BATCH_TOKENS = 2048;
/** Lens rows per call in batch mode: bigger products run nearer the matrix-multiply peak. */
export const BATCH_LENS_CHUNK_ROWS = 128;

interface Prepared {
  item: PromptItem;
  ids: number[];
  dropped: number;
  position: number;
  targets: number[];
}

/**
 * The logit lens over a stream of prompts. Prompts run in padded batches, sorted by length
 * within a read-ahead window, and come back in input order, each as soon as every prompt before
 * it is done. Stopping the iteration stops the work.
 */
export async function* analyzeBatch(
  model: LoadedModel,
  items: AsyncIterable<BatchItem> | Iterable<BatchItem>,
  o: BatchOptions = {},
): AsyncGenerator<BatchRecord> {
  const c = model.config;
  const layers = validateLayers(o.layers, c.n_layer);
  const k = validateK(o.k, c.vocab_size);
  const shared = o.targets ?? [];
  validateTargets(shared, c.vocab_size);
  const finalNorm = o.finalNorm ?? true;
  const batchSize = o.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxTokens = Math.max(o.maxBatchTokens ?? DEFAULT_BATCH_TOKENS, c.n_positions);
  const windowSize = Math.max(o.window ?? 4 * batchSize, 1);
  const warned = new Set<string>();
  const warn = (key: string, msg: string) => {
    if (!warned.has(key)) o.onWarning?.(msg);
    warned.add(key);
  };

  const prepare = (item: PromptItem): Prepared | ErrorItem => {
    try {
      const { ids, dropped } = tokenizeTruncated(model, item.prompt, o.truncate, 'shorten it or pass --truncate left|right');
      const position = resolvePosition(o.position, ids.length);
      const own = item.targets.map((text) => {
        const t = model.tokenizer.encode(text);
        if (t.length === 0) throw new LogitlensError(`target ${JSON.stringify(text)} encodes to no tokens; give a token such as " Paris"`);
        if (t.length > 1) warn('multi-token', `target ${JSON.stringify(text)} (line ${item.line}) is ${t.length} tokens; using the first (multi-token targets are not supported yet); other such targets are treated alike`);
        return t[0];
      });
      validateTargets(item.targetIds, c.vocab_size);
      return { item, ids, dropped, position, targets: [...shared, ...own, ...item.targetIds] };
    } catch (e) {
      if (!(e instanceof LogitlensError)) throw e;
      return { index: item.index, line: item.line, error: `line ${item.line}: ${e.message}` };
    }
  };

  const it = Symbol.asyncIterator in items ? (items as AsyncIterable<BatchItem>)[Symbol.asyncIterator]() : (items as Iterable<BatchItem>)[Symbol.iterator]();
  let pending: Promise<IteratorResult<BatchItem>> | undefined;
  let ended = false;
  while (!ended) {
    const window: BatchItem[] = [];
    while (window.length < windowSize) {
      const next = pending ?? Promise.resolve(it.next());
      pending = undefined;
      // a slow source (a pipe fed line by line) gets its prompts analyzed now, not once a window is full
      const got = window.length ? await within(next, READ_WAIT_MS) : await next;
      if (got === undefined) {
        pending = next;
        break;
      }
      if (got.done) {
        ended = true;
        break;
      }
      window.push(got.value);
    }
    if (window.length === 0) return;
    const results: Array<BatchRecord | undefined> = new Array(window.length);
    const ready: Array<{ slot: number; p: Prepared }> = [];
    window.forEach((item, slot) => {
      const p = isError(item) ? item : prepare(item);
      if (isError(p)) results[slot] = p;
      else ready.push({ slot, p });
    });
    let emitted = 0;
    function* flush(): Generator<BatchRecord> {
      while (emitted < results.length && results[emitted] !== undefined) yield results[emitted++]!;
    }
    yield* flush();
    for (const batch of planBatches(ready, batchSize, maxTokens)) {
      const recs = await runBatch(model, batch.map((b) => b.p), { layers, k, finalNorm, chunkRows: o.lensChunkRows, modelId: o.modelId ?? model.dir });
      batch.forEach((b, i) => (results[b.slot] = recs[i]));
      yield* flush();
    }
  }
}

/** How long a partly filled window waits for the next input line before running what it has. */
const READ_WAIT_MS = 50;

/** `p`'s value if it settles within `ms`, else undefined (p stays usable). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: Parameters<typeof clearTimeout>[0];
  try {
    return await Promise.race([p, new Promise<undefined>((res) => (timer = setTimeout(res, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sorted by length, cut into batches by count and padded size; then ordered by their earliest
 * input slot, so the first results can be written while later batches still run.
 */
function planBatches<T extends { slot: number; p: Prepared }>(ready: T[], batchSize: number, maxTokens: number): T[][] {
  const sorted = [...ready].sort((a, b) => a.p.ids.length - b.p.ids.length || a.slot - b.slot);
  const batches: T[][] = [];
  let cur: T[] = [];
  for (const r of sorted) {
    // sorted ascending, so r is the longest so far: the padded size if it joins
    if (cur.length && (cur.length >= batchSize || (cur.length + 1) * r.p.ids.length > maxTokens)) {
      batches.push(cur);
      cur = [];
    }
    cur.push(r);
  }
  if (cur.length) batches.push(cur);
  const first = (b: T[]) => Math.min(...b.map((r) => r.slot));
  return batches.sort((a, b) => first(a) - first(b));
}

async function runBatch(
  model: LoadedModel,
  prompts: Prepared[],
  o: { layers: number[]; k: number; finalNorm: boolean; chunkRows?: number; modelId: string },
): Promise<PromptRecord[]> {
  const L = model.config.n_layer;
  const fwd = await model.forward(prompts.map((p) => p.ids));
  const lens = await lensBatch(
    model,
    fwd,
    prompts.map((p, row) => ({ row, nTokens: p.ids.length, cells: o.layers.map((layer) => ({ layer, position: p.position })), targets: p.targets })),
    { finalNorm: o.finalNorm, k: o.k, targets: [], chunkRows: o.chunkRows ?? BATCH_LENS_CHUNK_ROWS },
  );
  const finals = o.finalNorm && o.layers.includes(L)
    ? lens.map((r) => r.stats[r.stats.length - 1].top[0].id)
    : await finalTop1(model, fwd, prompts.map((p) => p.position));
  return prompts.map((p, i) => {
    const { stats, selfCheck } = lens[i];
    const top1 = stats.map((s) => s.top[0].id);
    return {
      index: p.item.index,
      line: p.item.line,
      fields: p.item.fields,
      report: buildReport(model, { prompt: p.item.prompt, ids: p.ids, position: p.position, finalNorm: o.finalNorm, stats, selfCheck }, o.modelId),
      lockInLayer: lockIn(o.layers, top1, finals[i]),
      finalTop1: finals[i],
      dropped: p.dropped,
    };
  });
}

/** The model's own top-1 at each row's analyzed position (ln_f and the unembedding of the last layer). */
async function finalTop1(model: LoadedModel, fwd: ForwardResult, positions: number[]): Promise<number[]> {
  const { n_embd: E, n_layer: L } = model.config;
  const hidden = new Float32Array(positions.length * E);
  positions.forEach((pos, row) => hidden.set(fwd.hidden[L].subarray((row * fwd.seq + pos) * E, (row * fwd.seq + pos + 1) * E), row * E));
  const res = await model.lens({ hidden, finalNorm: true, refHidden: hidden, refIndex: positions.map((_, i) => i), k: 1, targets: [] });
  return Array.from(res.topIds, Number);
}

/** The first layer from which every reported layer's top-1 is the final one; null when the last one differs. */
export function lockIn(layers: number[], top1: number[], final: number): number | null {
  let at: number | null = null;
  for (let i = layers.length - 1; i >= 0 && top1[i] === final; i--) at = layers[i];
  return at;
}
