// What every benchmark shares: one GPT-2-small-shaped random checkpoint, and a way to time the
// real CLI in a child process together with its peak RSS.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticCheckpoint } from '../src/model/synthetic.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TOKENIZER_DIR = join(ROOT, 'test', 'fixtures', 'gpt2-tiny');
const RUNNER = join(ROOT, 'dist', 'scripts', 'measure-cli.js');

export const BENCH_DIR = process.env.LOGITLENS_BENCH_DIR ?? join(tmpdir(), 'logitlens-bench');
export const GPT2_SMALL = { n_layer: 12, n_embd: 768, n_head: 12, n_positions: 1024 };

/** GPT-2 small's shape with random weights (498 MB), written once and reused by every benchmark. */
export function gpt2SmallCheckpoint(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): string {
  const dir = join(BENCH_DIR, 'gpt2-small-random');
  if (!existsSync(join(dir, 'model.safetensors'))) {
    log(`writing a GPT-2-small-shaped random checkpoint to ${dir} (once)…`);
    writeSyntheticCheckpoint(dir, { config: GPT2_SMALL, seed: 1234, tokenizerFrom: TOKENIZER_DIR, tokenizerFiles: ['vocab.json', 'merges.txt'] });
  }
  return dir;
}

export interface CliRun { seconds: number; maxRssBytes: number; stdoutBytes: number }

/** Run logitlens (in-process runner, so RSS is the CLI's own) and time it from spawn to exit. */
export function timeCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  mkdirSync(BENCH_DIR, { recursive: true });
  const rssFile = join(BENCH_DIR, `rss-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [RUNNER, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env, LOGITLENS_RSS_FILE: rssFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.length));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0 || !existsSync(rssFile)) return reject(new Error(`logitlens ${args.slice(0, 6).join(' ')} … exited ${code}: ${err.slice(-2000)}`));
      const { maxRssBytes } = JSON.parse(readFileSync(rssFile, 'utf8')) as { maxRssBytes: number };
      rmSync(rssFile, { force: true });
      resolve({ seconds, maxRssBytes, stdoutBytes: out });
    });
  });
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
