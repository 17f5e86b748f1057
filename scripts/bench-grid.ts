// Time and peak memory of the layer × position grid on a GPT-2-small-shaped random checkpoint
// (12 layers, 768 wide, 12 heads, 1024 positions, the real 50,257-token vocabulary).
// Usage: node dist/scripts/bench-grid.js [--tokens 128,512] [--threads N] [--keep DIR]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { gpt2SmallCheckpoint, timeCli, TOKENIZER_DIR as TOKENIZER } from './bench-common.js';

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

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const r = await timeCli(args, env);
  return { seconds: r.seconds, maxRssMb: r.maxRssBytes / 1048576, stdoutBytes: r.stdoutBytes };
}

const sizes = arg('--tokens', '128,512').split(',').map(Number);
const threads = arg('--threads', '');
const keep = arg('--keep', '');
const work = keep || mkdtempSync(join(tmpdir(), 'logitlens-bench-grid-'));
const model = gpt2SmallCheckpoint();
const env = { XDG_CACHE_HOME: join(work, 'cache') };
const common = ['--model', model, ...(threads ? ['--threads', threads] : [])];
try {
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
