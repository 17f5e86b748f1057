import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectedTensors, type Gpt2Config } from './checkpoint.js';
import { encodeSafetensors } from './safetensors.js';

export interface SyntheticOptions {
  config: Partial<Gpt2Config> & Pick<Gpt2Config, 'n_layer' | 'n_embd' | 'n_head'>;
  /** 'save_pretrained' prefixes keys with "transformer."; 'official' is openai-community/gpt2's file (with attn.bias buffers) */
  layout?: 'save_pretrained' | 'official';
  dtype?: 'F32' | 'F16' | 'BF16';
  seed?: number;
  /** copy tokenizer files from this folder (tokenizer.json or vocab.json + merges.txt) */
  tokenizerFrom: string;
  tokenizerFiles?: string[];
  /** extra tensors (e.g. lm_head.bias) */
  extra?: Array<{ name: string; shape: number[]; data: Float32Array }>;
}

/** Deterministic uniform noise; weights only need to be reproducible, not pretty. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Write a GPT-2 checkpoint folder with random weights (tests, benchmarks). Weights are scaled like
 * a real initialization so activations stay in a realistic range.
 */
export function writeSyntheticCheckpoint(dir: string, o: SyntheticOptions): Gpt2Config {
  const c: Gpt2Config = {
    n_positions: 128, vocab_size: 50257, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new',
    n_inner: 4 * o.config.n_embd, ...o.config,
  };
  const rand = rng(o.seed ?? 1);
  const prefix = o.layout === 'official' ? '' : 'transformer.';
  const tensors: Array<{ name: string; dtype: 'F32' | 'F16' | 'BF16'; shape: number[]; data: Float32Array }> = [];
  const dtype = o.dtype ?? 'F32';
  for (const t of expectedTensors(c)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isLnWeight = /ln_\w+\.weight$/.test(t.name);
    const isBias = t.name.endsWith('.bias');
    const scale = isBias ? 0.02 : 0.04;
    for (let i = 0; i < n; i++) data[i] = isLnWeight ? 1 + (rand() - 0.5) * 0.2 : (rand() - 0.5) * 2 * scale;
    tensors.push({ name: prefix + t.name, dtype, shape: t.shape, data });
  }
  if (o.layout === 'official') {
    // the official file carries causal-mask buffers that a loader must ignore
    for (let l = 0; l < c.n_layer; l++) {
      tensors.push({ name: `h.${l}.attn.bias`, dtype, shape: [1, 1, 4, 4], data: new Float32Array(16).fill(1) });
    }
  }
  for (const e of o.extra ?? []) tensors.push({ ...e, dtype });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', ...c, n_ctx: c.n_positions,
    bos_token_id: 50256, eos_token_id: 50256,
  }, null, 2));
  const files = o.tokenizerFiles ?? (existsSync(join(o.tokenizerFrom, 'tokenizer.json')) ? ['tokenizer.json'] : ['vocab.json', 'merges.txt']);
  for (const f of files) copyFileSync(join(o.tokenizerFrom, f), join(dir, f));
  return c;
}
