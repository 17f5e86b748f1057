// Time and peak memory of the layer × position grid on a GPT-2-small-shaped random checkpoint
// (12 layers, 768 wide, 12 heads, 1024 positions, the real 50,257-token vocabulary).
// Usage: node dist/scripts/bench-grid.js [--tokens 128,512] [--threads N] [--keep DIR]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { writeSyntheticCheckpoint } from '../src/model/synthetic.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER = fileURLToPath(new URL('./rss-runner.js', import.meta.url));
const TOKENIZER = join(ROOT, 'test', 'fixtures', 'gpt2-tiny');

const PARAGRAPH = 'In the early morning light, the old fisherman pushed his small wooden boat into the calm water and rowed slowly '
  + 'toward the distant island where his grandfather had once built a lighthouse of white stone by hand. The gulls followed him, '
  + 'crying over the waves, and the town behind him woke to the smell of bread and tar. ';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** A prompt of exactly n tokens, cut at a token boundary of realistic English text. */
function promptOf(n: number): string {
  const tok = loadTokenizer(TOKENIZER);
  const ids = tok.encode(PARAGRAPH.repeat(Math.ceil(n / 40) + 1)).slice(0, n);
  const text = ids.map((id) => tok.token(id).text).join('');
  const got = tok.encode(text).length;
  if (got !== n) throw new Error(`prompt re-encodes to ${got} tokens, not ${n}`);
  return text;
}

interface Run { seconds: number; maxRssMb: number; stdoutBytes: number }

function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [RUNNER, ...args], { env: { ...process.env, ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (bytes += d.length));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /maxrss_kb=(\d+)/.exec(stderr);
      if (code !== 0 || !m) return reject(new Error(`logitlens ${args.slice(0, 6).join(' ')} … failed (exit ${code}):\n${stderr}`));
      resolve({ seconds, maxRssMb: Number(m[1]) / 1024, stdoutBytes: bytes });
    });
  });
}

const sizes = arg('--tokens', '128,512').split(',').map(Number);
const threads = arg('--threads', '');
const keep = arg('--keep', '');
const work = keep || mkdtempSync(join(tmpdir(), 'logitlens-bench-grid-'));
const model = join(work, 'gpt2-small-random');
const env = { XDG_CACHE_HOME: join(work, 'cache') };
const common = ['--model', model, ...(threads ? ['--threads', threads] : [])];
try {
  if (!existsSync(join(model, 'model.safetensors'))) {
    writeSyntheticCheckpoint(model, { config: { n_layer: 12, n_embd: 768, n_head: 12, n_positions: 1024 }, tokenizerFrom: TOKENIZER, seed: 7 });
  }
  const build = await run([...common, '-k', '1', 'Hello'], env);
  console.log(`checkpoint → ONNX build + one-token run: ${build.seconds.toFixed(1)} s, peak RSS ${build.maxRssMb.toFixed(0)} MB (cached afterwards)`);
  const base = await run([...common, '-k', '1', promptOf(8)], env);
  console.log(`startup baseline (8-token table, cached model): ${base.seconds.toFixed(1)} s, peak RSS ${base.maxRssMb.toFixed(0)} MB`);
  console.log('| tokens | output | cells | wall s | peak RSS MB | stdout/file |');
  console.log('|---:|---|---:|---:|---:|---:|');
  for (const n of sizes) {
    const prompt = promptOf(n);
    const cells = n * 13;
    const g = await run([...common, '--grid', '--json', prompt], env);
    console.log(`| ${n} | --grid --json | ${cells} | ${g.seconds.toFixed(1)} | ${g.maxRssMb.toFixed(0)} | ${(g.stdoutBytes / 1e6).toFixed(1)} MB |`);
    const html = join(work, `report-${n}.html`);
    const h = await run([...common, '--html', html, '--json', prompt], env);
    const { statSync } = await import('node:fs');
    console.log(`| ${n} | --html (top-5, attention all layers) | ${cells} | ${h.seconds.toFixed(1)} | ${h.maxRssMb.toFixed(0)} | ${(statSync(html).size / 1e6).toFixed(1)} MB |`);
  }
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
