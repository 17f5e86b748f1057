import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { LogitlensError } from '../errors.js';
import { buildLensHead, LENS_IO } from '../lens/head.js';
import { openWeights, readConfig, type Gpt2Config } from './checkpoint.js';
import { GRAPH_IO } from './onnx/gpt2.js';
import { LENS_FILE, lensWeights, MODEL_FILE } from './store.js';
import { loadTokenizer, type Gpt2Tokenizer } from './tokenizer.js';

type Ort = typeof import('onnxruntime-node');
let ortPromise: Promise<Ort> | undefined;

/** onnxruntime-node records telemetry on Linux unless told not to before it loads. */
export function loadOrt(): Promise<Ort> {
  process.env.ORT_DISABLE_TELEMETRY = '1';
  ortPromise ??= import('onnxruntime-node');
  return ortPromise;
}

export interface SessionTuning {
  /** intra-op threads; default: all cores */
  threads?: number;
  /**
   * 'single' favours start-up (no weight prepacking: less memory, faster session creation);
   * 'batch' favours throughput (prepacked weights, full graph optimization).
   */
  mode?: 'single' | 'batch';
}

export interface ForwardResult {
  batch: number;
  seq: number;
  /** hidden[l] is [batch, seq, n_embd] row-major */
  hidden: Float32Array[];
  /** attention[l] is [batch, n_head, seq, seq] for each fetched block l (see forward); empty when none were */
  attention: Float32Array[];
  /** [batch, vocab]: the model's next-token logits at each row's last real token */
  logits: Float32Array;
}

export interface LensRows {
  /** [rows, n_embd] */
  hidden: Float32Array;
  finalNorm: boolean;
  /** [refs, n_embd] last-layer residuals defining P_model */
  refHidden: Float32Array;
  refIndex: number[];
  k: number;
  targets: number[];
  /** optional self-check: model logits [checks, vocab] that ref rows `checkIndex` must reproduce */
  checkLogits?: Float32Array;
  checkIndex?: number[];
}

const EMPTY_LENS: LensRows = {
  hidden: new Float32Array(0), finalNorm: true, refHidden: new Float32Array(0), refIndex: [], k: 1, targets: [],
};

const LENS_OUTPUTS = [
  LENS_IO.topIds, LENS_IO.topLogits, LENS_IO.topLogprobs, LENS_IO.entropy, LENS_IO.kl,
  LENS_IO.targetLogprobs, LENS_IO.targetRanks, LENS_IO.checkDiff, LENS_IO.checkScale,
];

export interface LensRowsResult {
  rows: number;
  k: number;
  topIds: BigInt64Array;
  topLogits: Float32Array;
  topLogprobs: Float32Array;
  entropy: Float32Array;
  kl: Float32Array;
  targetLogprobs: Float32Array;
  targetRanks: BigInt64Array;
  checkDiff: Float32Array;
  checkScale: Float32Array;
}

/** A model ready to run: tokenizer, the forward graph and the lens head, each in ONNX Runtime. */
export class LoadedModel {
  private constructor(
    readonly dir: string,
    readonly config: Gpt2Config,
    readonly tokenizer: Gpt2Tokenizer,
    private readonly ort: Ort,
    private readonly forwardSession: InferenceSession,
    private readonly lensSession: InferenceSession,
    readonly hasAttention: boolean,
  ) {}

  static async open(dir: string, tuning: SessionTuning = {}): Promise<LoadedModel> {
    const ort = await loadOrt();
    const config = readConfig(dir);
    const tokenizer = loadTokenizer(dir);
    if (tokenizer.vocabSize > config.vocab_size) {
      throw new LogitlensError(`the tokenizer in ${dir} has ${tokenizer.vocabSize} tokens but config.json says vocab_size ${config.vocab_size}; the files do not belong together`);
    }
    const batch = tuning.mode === 'batch';
    const options: InferenceSession.SessionOptions = {
      intraOpNumThreads: tuning.threads ?? 0,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: batch ? 'all' : 'basic',
      logSeverityLevel: 3,
      // prepacking copies every weight into a second layout: worth it for many prompts only
      extra: { session: { disable_prepacking: batch ? '0' : '1' } },
    };
    const open = async (file: string, what: string): Promise<InferenceSession> => {
      try {
        return await ort.InferenceSession.create(file, options);
      } catch (e) {
        throw new LogitlensError(`cannot load ${what} ${file}: ${firstLine(e)}. Rebuild it (logitlens export, or delete the cache entry) or check the file`);
      }
    };
    const fwd = await open(join(dir, MODEL_FILE), 'the ONNX model');
    // a library caller that catches our error must not be left holding a native session
    try {
      const missing = [GRAPH_IO.inputIds, GRAPH_IO.attentionMask].filter((n) => !fwd.inputNames.includes(n));
      const wanted = [...Array.from({ length: config.n_layer + 1 }, (_, l) => GRAPH_IO.hidden(l)), GRAPH_IO.logits];
      const lacking = wanted.filter((n) => !fwd.outputNames.includes(n));
      if (missing.length || lacking.length) {
        const parts = [];
        if (missing.length) parts.push(`inputs ${missing.join(', ')}`);
        if (lacking.length) parts.push(`outputs ${summarizeNames(lacking)}`);
        throw new LogitlensError(
          `${join(dir, MODEL_FILE)} lacks ${parts.join(' and ')}; logitlens needs every hidden state (see "ONNX graph contract" in the README). Re-export with logitlens export`,
        );
      }
      // a foreign graph with float16 outputs would otherwise be read as garbage numbers
      const notFloat = fwd.outputMetadata.filter((m) => wanted.includes(m.name) && (!m.isTensor || m.type !== 'float32'));
      if (notFloat.length) {
        throw new LogitlensError(
          `${join(dir, MODEL_FILE)}: outputs ${notFloat.map((m) => m.name).join(', ')} are not float32 tensors; logitlens reads float32 hidden states and logits (see "ONNX graph contract" in the README)`,
        );
      }
      const hasAttention = Array.from({ length: config.n_layer }, (_, l) => GRAPH_IO.attention(l)).every((n) => fwd.outputNames.includes(n));
      let lens: InferenceSession;
      if (fwd.inputNames.includes(LENS_IO.hidden)) {
        lens = fwd; // our own graphs carry the lens head beside the forward pass
      } else if (existsSync(join(dir, LENS_FILE))) {
        lens = await open(join(dir, LENS_FILE), 'the lens head');
      } else if (existsSync(join(dir, 'model.safetensors'))) {
        const w = openWeights(dir, config);
        const bytes = buildLensHead(config, lensWeights(w)).toBytes();
        lens = await ort.InferenceSession.create(bytes, options);
      } else {
        throw new LogitlensError(`${join(dir, MODEL_FILE)} has no lens head, and ${dir} has neither ${LENS_FILE} nor model.safetensors to build one from; add one of them`);
      }
      return new LoadedModel(dir, config, tokenizer, ort, fwd, lens, hasAttention);
    } catch (e) {
      await fwd.release();
      throw e;
    }
  }

  /**
   * Run the forward graph on right-padded rows of token ids. `attention`: true for every block's attention probabilities, or the 0-based blocks wanted
   * (only those leave ONNX Runtime; `attention[l]` is then set for just those l).
   */
  async forward(rows: number[][], attention: boolean | number[] = false): Promise<ForwardResult> {
    const B = rows.length;
    const S = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(B * S);
    const mask = new BigInt64Array(B * S);
    rows.forEach((r, b) => r.forEach((id, t) => {
      ids[b * S + t] = BigInt(id);
      mask[b * S + t] = 1n;
    }));
    const T = this.ort.Tensor;
    const feeds: Record<string, Tensor> = {
      [GRAPH_IO.inputIds]: new T('int64', ids, [B, S]),
      [GRAPH_IO.attentionMask]: new T('int64', mask, [B, S]),
      ...(this.combined ? this.lensFeeds(EMPTY_LENS) : {}),
    };
    const L = this.config.n_layer;
    const names = [...Array.from({ length: L + 1 }, (_, l) => GRAPH_IO.hidden(l)), GRAPH_IO.logits];
    const blocks = !this.hasAttention || attention === false ? [] : attention === true ? Array.from({ length: L }, (_, l) => l) : attention;
    names.push(...blocks.map((l) => GRAPH_IO.attention(l)));
    const out = await this.forwardSession.run(feeds, names);
    const f32 = (n: string) => out[n].data as Float32Array;
    return {
      batch: B,
      seq: S,
      hidden: Array.from({ length: L + 1 }, (_, l) => f32(GRAPH_IO.hidden(l))),
      attention: blocks.reduce<Float32Array[]>((acc, l) => ((acc[l] = f32(GRAPH_IO.attention(l))), acc), []),
      logits: f32(GRAPH_IO.logits),
    };
  }

  /** Run the lens head over arbitrary hidden rows. */
  async lens(req: LensRows): Promise<LensRowsResult> {
    const feeds = this.lensFeeds(req);
    if (this.combined) {
      // the forward half of the graph gets an empty batch, so it costs nothing
      const none = new this.ort.Tensor('int64', new BigInt64Array(0), [0, 1]);
      feeds[GRAPH_IO.inputIds] = none;
      feeds[GRAPH_IO.attentionMask] = none;
    }
    const out = await this.lensSession.run(feeds, LENS_OUTPUTS);
    return {
      rows: req.hidden.length / this.config.n_embd,
      k: req.k,
      topIds: out[LENS_IO.topIds].data as BigInt64Array,
      topLogits: out[LENS_IO.topLogits].data as Float32Array,
      topLogprobs: out[LENS_IO.topLogprobs].data as Float32Array,
      entropy: out[LENS_IO.entropy].data as Float32Array,
      kl: out[LENS_IO.kl].data as Float32Array,
      targetLogprobs: out[LENS_IO.targetLogprobs].data as Float32Array,
      targetRanks: out[LENS_IO.targetRanks].data as BigInt64Array,
      checkDiff: out[LENS_IO.checkDiff].data as Float32Array,
      checkScale: out[LENS_IO.checkScale].data as Float32Array,
    };
  }

  private lensFeeds(req: LensRows): Record<string, Tensor> {
    const E = this.config.n_embd;
    const V = this.config.vocab_size;
    const T = this.ort.Tensor;
    const i64 = (xs: number[]) => new T('int64', BigInt64Array.from(xs.map((x) => BigInt(x))), [xs.length]);
    const checkIndex = req.checkIndex ?? [];
    return {
      [LENS_IO.hidden]: new T('float32', req.hidden, [req.hidden.length / E, E]),
      [LENS_IO.finalNorm]: new T('bool', new Uint8Array([req.finalNorm ? 1 : 0]), [1]),
      [LENS_IO.refHidden]: new T('float32', req.refHidden, [req.refHidden.length / E, E]),
      [LENS_IO.refIndex]: i64(req.refIndex),
      [LENS_IO.k]: i64([req.k]),
      [LENS_IO.targetIds]: i64(req.targets),
      [LENS_IO.checkLogits]: new T('float32', req.checkLogits ?? new Float32Array(0), [checkIndex.length, V]),
      [LENS_IO.checkIndex]: i64(checkIndex),
    };
  }

  private get combined(): boolean {
    return this.lensSession === this.forwardSession;
  }

  async close(): Promise<void> {
    await this.forwardSession.release();
    if (!this.combined) await this.lensSession.release();
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0].slice(0, 300);
}

function summarizeNames(names: string[]): string {
  return names.length > 4 ? `${names.slice(0, 3).join(', ')}, … (${names.length} in all)` : names.join(', ');
}
