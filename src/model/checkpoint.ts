import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LogitlensError } from '../errors.js';
import { readSafetensorsHeader, readTensorF32, streamTensorF32, type SafetensorsFile, type TensorInfo } from './safetensors.js';

/** The config.json fields the forward pass depends on. */
export interface Gpt2Config {
  n_layer: number;
  n_embd: number;
  n_head: number;
  n_positions: number;
  vocab_size: number;
  n_inner: number;
  layer_norm_epsilon: number;
  activation_function: string;
}

export function readConfig(dir: string): Gpt2Config {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    throw new LogitlensError(`${dir} has no config.json: point --model at a Hugging Face GPT-2 folder (as save_pretrained writes it) or an exported logitlens folder`);
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new LogitlensError(`${path} is not valid JSON (${(e as Error).message}); re-download or re-save the model`);
  }
  return parseConfig(raw, path);
}

export function parseConfig(raw: Record<string, unknown>, where = 'config.json'): Gpt2Config {
  const type = raw.model_type;
  const int = (k: string, fallback?: number): number => {
    const v = raw[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new LogitlensError(`${where} has no valid "${k}" (got ${JSON.stringify(v)}); it does not look like a GPT-2 config`);
    }
    return v;
  };
  if (type !== undefined && type !== 'gpt2') {
    throw new LogitlensError(`${where} describes a "${String(type)}" model; logitlens supports GPT-2-family checkpoints (model_type "gpt2") only`);
  }
  const n_embd = int('n_embd');
  const n_head = int('n_head');
  if (n_embd % n_head !== 0) throw new LogitlensError(`${where}: n_embd ${n_embd} is not divisible by n_head ${n_head}`);
  const act = String(raw.activation_function ?? 'gelu_new');
  if (!['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'gelu'].includes(act)) {
    throw new LogitlensError(`${where}: activation_function "${act}" is not supported (expected gelu_new)`);
  }
  if (raw.scale_attn_by_inverse_layer_idx === true) {
    throw new LogitlensError(`${where}: scale_attn_by_inverse_layer_idx=true is not supported yet`);
  }
  if (raw.scale_attn_weights === false) throw new LogitlensError(`${where}: scale_attn_weights=false is not supported`);
  const eps = raw.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0)) throw new LogitlensError(`${where}: invalid layer_norm_epsilon ${JSON.stringify(eps)}`);
  return {
    n_layer: int('n_layer'),
    n_embd,
    n_head,
    n_positions: int('n_positions', typeof raw.n_ctx === 'number' ? raw.n_ctx : undefined),
    vocab_size: int('vocab_size'),
    n_inner: raw.n_inner == null ? 4 * n_embd : int('n_inner'),
    layer_norm_epsilon: eps,
    activation_function: act,
  };
}

/** Canonical (save_pretrained-style) names of the tensors the forward pass needs, with shapes. */
export function expectedTensors(c: Gpt2Config): Array<{ name: string; shape: number[] }> {
  const E = c.n_embd;
  const out: Array<{ name: string; shape: number[] }> = [
    { name: 'wte.weight', shape: [c.vocab_size, E] },
    { name: 'wpe.weight', shape: [c.n_positions, E] },
  ];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `h.${i}.`;
    out.push(
      { name: p + 'ln_1.weight', shape: [E] }, { name: p + 'ln_1.bias', shape: [E] },
      { name: p + 'attn.c_attn.weight', shape: [E, 3 * E] }, { name: p + 'attn.c_attn.bias', shape: [3 * E] },
      { name: p + 'attn.c_proj.weight', shape: [E, E] }, { name: p + 'attn.c_proj.bias', shape: [E] },
      { name: p + 'ln_2.weight', shape: [E] }, { name: p + 'ln_2.bias', shape: [E] },
      { name: p + 'mlp.c_fc.weight', shape: [E, c.n_inner] }, { name: p + 'mlp.c_fc.bias', shape: [c.n_inner] },
      { name: p + 'mlp.c_proj.weight', shape: [c.n_inner, E] }, { name: p + 'mlp.c_proj.bias', shape: [E] },
    );
  }
  out.push({ name: 'ln_f.weight', shape: [E] }, { name: 'ln_f.bias', shape: [E] });
  return out;
}

/**
 * Lazily readable GPT-2 weights. Names are canonical (`h.0.attn.c_attn.weight`, no `transformer.`
 * prefix) whichever layout the file used; data is read (and widened to float32) on demand so a
 * 6 GB checkpoint is never held twice.
 */
export interface Gpt2Weights {
  config: Gpt2Config;
  shape(name: string): number[];
  get(name: string): Float32Array;
  /** the same data as float32 bytes in bounded chunks (see streamTensorF32) */
  stream(name: string, onChunk: (bytes: Uint8Array) => void): void;
  /** lm_head.bias when the checkpoint has one (GPT-2 itself does not) */
  hasLmHeadBias: boolean;
  /** true when lm_head.weight is stored and differs from wte (untied); we then project with it */
  untiedLmHead: boolean;
}

export function openWeights(dir: string, config: Gpt2Config): Gpt2Weights {
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path)) {
    const alt = ['pytorch_model.bin', 'model.safetensors.index.json', 'tf_model.h5'].find((f) => existsSync(join(dir, f)));
    throw new LogitlensError(
      `${dir} has no model.safetensors` +
        (alt ? ` (it has ${alt}, which logitlens cannot read: re-save with save_pretrained(safe_serialization=True) into one file)` : ': the weights file is missing'),
    );
  }
  const file = readSafetensorsHeader(path);
  const map = new Map<string, TensorInfo>();
  for (const [key, info] of file.tensors) {
    // official openai-community/gpt2 has no "transformer." prefix; save_pretrained adds it
    const canon = key.startsWith('transformer.') ? key.slice('transformer.'.length) : key;
    map.set(canon, info);
  }
  for (const { name, shape } of expectedTensors(config)) {
    const info = map.get(name);
    if (!info) {
      throw new LogitlensError(`${path} lacks tensor ${name} (or transformer.${name}); the checkpoint is incomplete or not a GPT-2 model`);
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new LogitlensError(
        `${path}: tensor ${info.name} has shape [${info.shape.join(', ')}] but config.json implies [${shape.join(', ')}]; the weights do not match config.json`,
      );
    }
  }
  const lmBias = map.get('lm_head.bias');
  if (lmBias && (lmBias.shape.length !== 1 || lmBias.shape[0] !== config.vocab_size)) {
    throw new LogitlensError(`${path}: lm_head.bias has shape [${lmBias.shape.join(', ')}], expected [${config.vocab_size}]`);
  }
  const lmW = map.get('lm_head.weight');
  let untied = false;
  if (lmW) {
    if (lmW.shape[0] !== config.vocab_size || lmW.shape[1] !== config.n_embd) {
      throw new LogitlensError(`${path}: lm_head.weight has shape [${lmW.shape.join(', ')}], expected [${config.vocab_size}, ${config.n_embd}]`);
    }
    untied = !sameData(file, lmW, map.get('wte.weight')!);
  }
  return {
    config,
    shape: (name) => requireInfo(map, name, path).shape,
    get: (name) => readTensorF32(file, requireInfo(map, name, path)),
    stream: (name, onChunk) => streamTensorF32(file, requireInfo(map, name, path), onChunk),
    hasLmHeadBias: !!lmBias,
    untiedLmHead: untied,
  };
}

function requireInfo(map: Map<string, TensorInfo>, name: string, path: string): TensorInfo {
  const info = map.get(name);
  if (!info) throw new LogitlensError(`${path} lacks tensor ${name}`);
  return info;
}

function sameData(file: SafetensorsFile, a: TensorInfo, b: TensorInfo): boolean {
  if (a.offset === b.offset && a.dtype === b.dtype) return true;
  const x = readTensorF32(file, a);
  const y = readTensorF32(file, b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Identity of a checkpoint's files, for cache keys: changes when any file is replaced. */
export function checkpointFingerprint(dir: string, files: string[]): string {
  return files
    .filter((f) => existsSync(join(dir, f)))
    .map((f) => {
      const s = statSync(join(dir, f));
      return `${f}:${s.size}:${s.mtimeMs}:${s.ino}`;
    })
    .join('|');
}
