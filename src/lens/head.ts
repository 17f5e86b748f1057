import { GraphBuilder } from '../model/onnx/graph.js';
import { DType } from '../model/onnx/proto.js';
import type { Gpt2Config } from '../model/checkpoint.js';

/**
 * ONNX interface of the lens head: any set of hidden rows in, per-row statistics over the full
 * vocabulary out. The vocabulary-sized tensors never leave ONNX Runtime.
 */
export const LENS_IO = {
  // inputs
  hidden: 'hidden', //             float [rows, n_embd]: residual-stream vectors to read (pre-ln_f)
  finalNorm: 'final_norm', //      bool [1]: apply ln_f to `hidden` before unembedding
  refHidden: 'ref_hidden', //      float [refs, n_embd]: last-layer residuals; ln_f + unembedding give P_model
  refIndex: 'ref_index', //        int64 [rows]: which ref row is each row's P_model (for KL)
  k: 'k', //                       int64 [1]: how many top entries
  targetIds: 'target_ids', //      int64 [targets]
  checkLogits: 'check_logits', //  float [checks, vocab]: the model graph's own logits
  checkIndex: 'check_index', //    int64 [checks]: the ref row each check row should equal
  // outputs
  topIds: 'top_ids', //            int64 [rows, k], by logit descending
  topLogits: 'top_logits', //      float [rows, k]
  topLogprobs: 'top_logprobs', //  float [rows, k]
  entropy: 'entropy', //           float [rows], nats
  kl: 'kl_to_final', //            float [rows], KL(P_model || P_row) in nats
  targetLogprobs: 'target_logprobs', // float [rows, targets]
  targetRanks: 'target_ranks', //  int64 [rows, targets]: entries with a strictly larger logit (0 = top)
  checkDiff: 'check_max_abs_diff', // float [checks]: max |ref logits - check logits|
  checkScale: 'check_max_abs_logit', // float [checks]: max |check logits|, to make the tolerance relative
} as const;

export interface LensHeadWeights {
  lnWeight: Float32Array;
  lnBias: Float32Array;
  /** [vocab, n_embd]: tied wte, or lm_head.weight when untied */
  unembed: Float32Array;
  lmHeadBias?: Float32Array;
}

/** Initializer names (already in the graph) the lens head reads. */
export interface LensHeadInits {
  lnWeight: string;
  lnBias: string;
  /** [vocab, n_embd] */
  unembed: string;
  lmHeadBias?: string;
}

/** A standalone lens-head graph (for ONNX models made by other exporters). */
export function buildLensHead(c: Gpt2Config, weights: LensHeadWeights): GraphBuilder {
  const g = new GraphBuilder('logitlens_lens_head', 20);
  const E = c.n_embd;
  const V = c.vocab_size;
  const W = (name: string, dims: number[], data: Float32Array) => g.weight(name, dims, () => data);
  addLensHead(g, c, {
    lnWeight: W('ln_f.weight', [E], weights.lnWeight),
    lnBias: W('ln_f.bias', [E], weights.lnBias),
    unembed: W('unembed', [V, E], weights.unembed),
    lmHeadBias: weights.lmHeadBias ? W('lm_head.bias', [V], weights.lmHeadBias) : undefined,
  });
  return g;
}

/**
 * Add the lens head's inputs, nodes and outputs to a graph. Built into the model graph itself,
 * it shares the unembedding with the forward pass: one copy of the largest matrix in memory.
 */
export function addLensHead(g: GraphBuilder, c: Gpt2Config, w: LensHeadInits): void {
  const E = c.n_embd;
  const V = c.vocab_size;
  const h = g.input(LENS_IO.hidden, DType.FLOAT, ['rows', E]);
  const useNorm = g.input(LENS_IO.finalNorm, DType.BOOL, [1]);
  const ref = g.input(LENS_IO.refHidden, DType.FLOAT, ['refs', E]);
  const refIndex = g.input(LENS_IO.refIndex, DType.INT64, ['rows']);
  const k = g.input(LENS_IO.k, DType.INT64, [1]);
  const targets = g.input(LENS_IO.targetIds, DType.INT64, ['targets']);
  const checkLogits = g.input(LENS_IO.checkLogits, DType.FLOAT, ['checks', V]);
  const checkIndex = g.input(LENS_IO.checkIndex, DType.INT64, ['checks']);

  const lnF = (v: string) => g.op('LayerNormalization', [v, w.lnWeight, w.lnBias], { axis: -1, epsilon: { float: c.layer_norm_epsilon } });
  const axis0 = g.constInt64([0]);
  const axis1 = g.constInt64([1]);

  // rows and refs go through ONE unembedding product: for a handful of rows its cost is
  // streaming the [vocab, n_embd] matrix, so one pass instead of two halves the time
  const nRows = g.op('Slice', [g.op('Shape', [h]), axis0, axis1]);
  const both = g.op('Concat', [g.op('Where', [useNorm, lnF(h), h]), lnF(ref)], { axis: 0 });
  let z = g.op('Gemm', [both, w.unembed], { transB: 1 });
  if (w.lmHeadBias) z = g.op('Add', [z, w.lmHeadBias]);
  const logits = g.op('Slice', [z, g.constInt64([0]), nRows, axis0]);
  const refLogits = g.op('Slice', [z, nRows, g.constInt64([Number.MAX_SAFE_INTEGER]), axis0]);

  const logp = g.op('LogSoftmax', [logits], { axis: -1 });
  const p = g.op('Exp', [logp]);
  g.output(g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [p, logp]), axis1], { keepdims: 0 })]), LENS_IO.entropy, DType.FLOAT, ['rows']);

  const refLogp = g.op('Gather', [g.op('LogSoftmax', [refLogits], { axis: -1 }), refIndex], { axis: 0 });
  const kl = g.op('ReduceSum', [g.op('Mul', [g.op('Exp', [refLogp]), g.op('Sub', [refLogp, logp])]), axis1], { keepdims: 0 });
  g.output(kl, LENS_IO.kl, DType.FLOAT, ['rows']);

  // ORT's TopK dies (SIGFPE) on zero rows, which is what the lens half of a combined graph gets
  // during a forward run: give it one spare row and drop that row's result
  const spare = g.op('Expand', [g.constFloat([0], [1, 1]), g.constInt64([1, V])]);
  const [padVals, padIdx] = g.opN('TopK', [g.op('Concat', [logits, spare], { axis: 0 }), k], 2, { axis: -1, largest: 1, sorted: 1 });
  const topVals = g.op('Slice', [padVals, axis0, nRows, axis0]);
  const topIdx = g.op('Slice', [padIdx, axis0, nRows, axis0]);
  g.output(topIdx, LENS_IO.topIds, DType.INT64, ['rows', 'k']);
  g.output(topVals, LENS_IO.topLogits, DType.FLOAT, ['rows', 'k']);
  g.output(g.op('GatherElements', [logp, topIdx], { axis: 1 }), LENS_IO.topLogprobs, DType.FLOAT, ['rows', 'k']);

  g.output(g.op('Gather', [logp, targets], { axis: 1 }), LENS_IO.targetLogprobs, DType.FLOAT, ['rows', 'targets']);
  const tLogit = g.op('Unsqueeze', [g.op('Gather', [logits, targets], { axis: 1 }), g.constInt64([2])]); // [rows, T, 1]
  const above = g.op('Greater', [g.op('Unsqueeze', [logits, axis1]), tLogit]); // [rows, T, V]
  const ranks = g.op('Cast', [g.op('ReduceSum', [g.op('Cast', [above], { to: DType.FLOAT }), g.constInt64([2])], { keepdims: 0 })], { to: DType.INT64 });
  g.output(ranks, LENS_IO.targetRanks, DType.INT64, ['rows', 'targets']);

  const diff = g.op('Abs', [g.op('Sub', [g.op('Gather', [refLogits, checkIndex], { axis: 0 }), checkLogits])]);
  g.output(g.op('ReduceMax', [diff, axis1], { keepdims: 0 }), LENS_IO.checkDiff, DType.FLOAT, ['checks']);
  g.output(g.op('ReduceMax', [g.op('Abs', [checkLogits]), axis1], { keepdims: 0 }), LENS_IO.checkScale, DType.FLOAT, ['checks']);
}
