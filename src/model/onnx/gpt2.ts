import type { Gpt2Weights } from '../checkpoint.js';
import { DType } from './proto.js';
import { GraphBuilder } from './graph.js';
import { addLensHead } from '../../lens/head.js';

/**
 * The ONNX interface of a logitlens model graph. Other exporters can produce compatible files by
 * following it (see README, "ONNX graph contract").
 */
export const GRAPH_IO = {
  inputIds: 'input_ids', //            int64 [batch, seq]
  attentionMask: 'attention_mask', //  int64 [batch, seq], 1 = token, 0 = padding
  hidden: (l: number) => `hidden_states.${l}`, // float [batch, seq, n_embd], residual after l blocks, before ln_f
  attention: (l: number) => `attentions.${l}`, // float [batch, n_head, seq(query), seq(key)], softmax probabilities of block l
  logits: 'logits', //                 float [batch, vocab]: next-token logits at each row's last non-padding position
} as const;

/** ONNX opset: Gelu(approximate="tanh") needs 20. */
export const OPSET = 20;

/**
 * GPT-2's forward pass as an ONNX graph, laid out like nanoGPT's model.py. Every residual
 * stream h_0..h_L (pre-ln_f) and every block's attention probabilities are graph outputs.
 * The lens head (see lens/head.ts) is added beside it unless opts.lensHead is false: the two
 * parts share no inputs, so a run feeds one part and gives the other empty tensors.
 */
export function buildGpt2Graph(w: Gpt2Weights, opts: { lensHead?: boolean } = {}): GraphBuilder {
  const c = w.config;
  const E = c.n_embd;
  const H = c.n_head;
  const D = E / H;
  const g = new GraphBuilder('logitlens_gpt2', OPSET);
  const W = (name: string) => g.weight(name, w.shape(name), () => w.get(name), (onChunk) => w.stream(name, onChunk));

  const ids = g.input(GRAPH_IO.inputIds, DType.INT64, ['batch', 'seq']);
  const mask = g.input(GRAPH_IO.attentionMask, DType.INT64, ['batch', 'seq']);

  // position = index among the row's real tokens, so left and right padding both give 0,1,2,...
  const zero = g.constInt64([0], []);
  const one = g.constInt64([1], []);
  const pos = g.op('Max', [g.op('Sub', [g.op('CumSum', [mask, one]), one]), zero]);
  const wte = W('wte.weight');
  let x = g.op('Add', [g.op('Gather', [wte, ids]), g.op('Gather', [W('wpe.weight'), pos])]);
  g.output(x, GRAPH_IO.hidden(0), DType.FLOAT, ['batch', 'seq', E]);

  // allowed[b, 1, i, j] = key j is at or before query i, and key j is not padding
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), g.constInt64([1], [])]);
  const ar = g.op('Range', [g.constInt64([0], []), seqLen, g.constInt64([1], [])]);
  const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [ar, g.constInt64([0])]), g.op('Unsqueeze', [ar, g.constInt64([1])])]);
  const keyOk = g.op('Unsqueeze', [g.op('Cast', [mask], { to: DType.BOOL }), g.constInt64([1, 2])]);
  const allowed = g.op('And', [causal, keyOk]);
  // the most negative float, as HF does: exp() of it is exactly 0, and a fully padded row stays finite
  const minValue = g.constFloat([-3.4028234663852886e38], []);
  const scale = g.constFloat([Math.sqrt(D)], []);

  // HF's "gelu" is the exact erf form; gelu_new, gelu_pytorch_tanh and gelu_fast are the tanh one
  const gelu = c.activation_function === 'gelu' ? 'none' : 'tanh';
  const layerNorm = (v: string, prefix: string) =>
    g.op('LayerNormalization', [v, W(`${prefix}.weight`), W(`${prefix}.bias`)], { axis: -1, epsilon: { float: c.layer_norm_epsilon } });
  const linear = (v: string, prefix: string) => g.op('Add', [g.op('MatMul', [v, W(`${prefix}.weight`)]), W(`${prefix}.bias`)]);

  for (let l = 0; l < c.n_layer; l++) {
    const p = `h.${l}`;
    // attention
    const qkv = linear(layerNorm(x, `${p}.ln_1`), `${p}.attn.c_attn`);
    const [q, k, v] = g.opN('Split', [qkv, g.constInt64([E, E, E])], 3, { axis: 2 });
    const heads = (t: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, g.constInt64([0, 0, H, D])])], { perm });
    const scores = g.op('Div', [g.op('MatMul', [heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1])]), scale]);
    const att = g.op('Softmax', [g.op('Where', [allowed, scores, minValue])], { axis: -1 });
    g.output(att, GRAPH_IO.attention(l), DType.FLOAT, ['batch', H, 'seq', 'seq']);
    const y = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [att, heads(v, [0, 2, 1, 3])])], { perm: [0, 2, 1, 3] }), g.constInt64([0, 0, E])]);
    x = g.op('Add', [x, linear(y, `${p}.attn.c_proj`)]);
    // MLP
    const hMlp = g.op('Gelu', [linear(layerNorm(x, `${p}.ln_2`), `${p}.mlp.c_fc`)], { approximate: gelu });
    x = g.op('Add', [x, linear(hMlp, `${p}.mlp.c_proj`)]);
    g.output(x, GRAPH_IO.hidden(l + 1), DType.FLOAT, ['batch', 'seq', E]);
  }

  // logits only at each row's last real token: the full [batch, seq, vocab] would dwarf everything else
  const last = g.op('Max', [g.op('Sub', [g.op('ReduceSum', [mask, g.constInt64([1])], { keepdims: 0 }), one]), zero]);
  const xLast = g.op('GatherND', [x, g.op('Unsqueeze', [last, g.constInt64([1])])], { batch_dims: 1 });
  const unembed = w.untiedLmHead ? W('lm_head.weight') : wte;
  const lmBias = w.hasLmHeadBias ? W('lm_head.bias') : undefined;
  let logits = g.op('Gemm', [layerNorm(xLast, 'ln_f'), unembed], { transB: 1 });
  if (lmBias) logits = g.op('Add', [logits, lmBias]);
  g.output(logits, GRAPH_IO.logits, DType.FLOAT, ['batch', c.vocab_size]);
  if (opts.lensHead ?? true) addLensHead(g, c, { lnWeight: 'ln_f.weight', lnBias: 'ln_f.bias', unembed, lmHeadBias: lmBias });
  return g;
}
