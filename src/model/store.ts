import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { LogitlensError } from '../errors.js';
import type { LensHeadWeights } from '../lens/head.js';
import { checkpointFingerprint, openWeights, readConfig, type Gpt2Config, type Gpt2Weights } from './checkpoint.js';
import { buildGpt2Graph } from './onnx/gpt2.js';
import { tokenizerFiles } from './tokenizer.js';
import { pidAlive } from '../util/process.js';

/** Bump when the graph layout changes, so old cache entries are rebuilt rather than misread. */
export const BUILD_VERSION = 3;

export const MODEL_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx.data';
export const LENS_FILE = 'lens.onnx';
export const META_FILE = 'logitlens.json';

/** What logitlens writes beside the graphs of a built folder. */
export interface BuildMeta {
  format: 'logitlens-onnx/1';
  build_version: number;
  source: string;
  fingerprint: string;
  built_at: string;
  /** extra identity the caller wants recorded (e.g. Hub repo id and commit) */
  origin?: Record<string, string>;
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.trim() ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'logitlens');
}

export type ModelFolderKind = 'checkpoint' | 'onnx';

/** Decide what a --model folder is, or say exactly what it lacks. */
export function inspectModelFolder(dir: string): ModelFolderKind {
  if (!existsSync(dir)) {
    throw new LogitlensError(`model path ${dir} does not exist; give a Hugging Face GPT-2 folder or an exported logitlens folder`);
  }
  if (!statSync(dir).isDirectory()) {
    throw new LogitlensError(`model path ${dir} is a file; --model takes the folder that holds config.json and the weights`);
  }
  const has = (f: string) => existsSync(join(dir, f));
  if (!has('config.json')) {
    throw new LogitlensError(`${dir} has no config.json: it is not a model folder (expected config.json plus model.safetensors or model.onnx)`);
  }
  if (!tokenizerFiles(dir)) {
    throw new LogitlensError(`${dir} has no tokenizer: add tokenizer.json, or vocab.json and merges.txt`);
  }
  if (has(MODEL_FILE)) return 'onnx';
  if (has('model.safetensors')) return 'checkpoint';
  return (openWeights(dir, readConfig(dir)), 'checkpoint'); // throws the specific "missing weights" error
}

/**
 * Write a complete ONNX folder for a checkpoint into `outDir` atomically: everything goes to a
 * temp folder beside it, renamed into place at the end.
 */
export function buildOnnxFolder(checkpointDir: string, outDir: string, origin?: Record<string, string>): void {
  const config = readConfig(checkpointDir);
  const weights = openWeights(checkpointDir, config);
  const tmp = `${outDir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  try {
    buildGpt2Graph(weights).save(tmp, MODEL_FILE, DATA_FILE);
    const files = ['config.json', ...(tokenizerFiles(checkpointDir) ?? []), 'tokenizer_config.json', 'special_tokens_map.json'];
    for (const f of files) if (existsSync(join(checkpointDir, f))) copyFileSync(join(checkpointDir, f), join(tmp, f));
    const meta: BuildMeta = {
      format: 'logitlens-onnx/1',
      build_version: BUILD_VERSION,
      source: resolve(checkpointDir),
      fingerprint: checkpointFingerprint(checkpointDir, ['config.json', 'model.safetensors']),
      built_at: new Date().toISOString(),
      ...(origin ? { origin } : {}),
    };
    writeFileSync(join(tmp, META_FILE), JSON.stringify(meta, null, 2) + '\n');
    rmSync(outDir, { recursive: true, force: true });
    renameSync(tmp, outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The weights a standalone lens head needs (for ONNX graphs from other exporters). */
export function lensWeights(w: Gpt2Weights): LensHeadWeights {
  return {
    lnWeight: w.get('ln_f.weight'),
    lnBias: w.get('ln_f.bias'),
    unembed: w.get(w.untiedLmHead ? 'lm_head.weight' : 'wte.weight'),
    lmHeadBias: w.hasLmHeadBias ? w.get('lm_head.bias') : undefined,
  };
}

export interface PreparedModel {
  /** folder with model.onnx, lens.onnx (or model.safetensors), config.json and tokenizer */
  dir: string;
  config: Gpt2Config;
  /** true when this call built the ONNX graphs */
  built: boolean;
}

export function cacheKey(checkpointDir: string): string {
  const real = realpathSync(checkpointDir);
  const fp = checkpointFingerprint(real, ['config.json', 'model.safetensors']);
  return createHash('sha256').update(`${BUILD_VERSION}\n${real}\n${fp}`).digest('hex').slice(0, 20);
}

/** Turn a --model folder into a ready ONNX folder, building into the cache when needed. */
export function prepareModelFolder(
  dir: string,
  opts: { cacheDir?: string; onBuild?: () => void; origin?: Record<string, string>; key?: string } = {},
): PreparedModel {
  const kind = inspectModelFolder(dir);
  if (kind === 'onnx') return { dir, config: readConfig(dir), built: false };
  const config = readConfig(dir);
  const entry = builtModelDir(opts.key ?? cacheKey(dir), opts.cacheDir);
  if (isCompleteBuild(entry)) return { dir: entry, config, built: false };
  openWeights(dir, config); // a broken checkpoint fails here, before we announce a build
  opts.onBuild?.();
  mkdirSync(join(entry, '..'), { recursive: true });
  sweepStaleTemps(entry);
  buildOnnxFolder(dir, entry, opts.origin);
  if (!opts.key) dropSupersededBuilds(entry, resolve(dir));
  return { dir: entry, config, built: true };
}

/** Where a built model with this cache key lives. */
export function builtModelDir(key: string, cacheDir?: string): string {
  return join(cacheDir ?? cacheRoot(), 'models', key);
}

export function isCompleteBuild(dir: string): boolean {
  const meta = join(dir, META_FILE);
  if (!existsSync(meta) || !existsSync(join(dir, MODEL_FILE))) return false;
  try {
    return (JSON.parse(readFileSync(meta, 'utf8')) as BuildMeta).build_version === BUILD_VERSION;
  } catch {
    return false;
  }
}

/** Remove temp folders left by builds whose process died (killed, power loss). */
function sweepStaleTemps(entry: string): void {
  const parent = dirname(entry);
  const prefix = `${basename(entry)}.tmp-`;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid)) {
      rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
}

/** A local checkpoint that changed leaves its old build behind: hundreds of MB nobody will use again. */
function dropSupersededBuilds(entry: string, source: string): void {
  const parent = dirname(entry);
  for (const name of readdirSync(parent)) {
    const other = join(parent, name);
    if (other === entry || name.includes('.tmp-') || !isCompleteBuild(other)) continue;
    try {
      const meta = JSON.parse(readFileSync(join(other, META_FILE), 'utf8')) as BuildMeta;
      if (meta.source === source && !meta.origin) rmSync(other, { recursive: true, force: true });
    } catch {
      // unreadable metadata: not ours to judge
    }
  }
}
