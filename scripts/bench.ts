// Single-prompt benchmark on a GPT-2-small-shaped random checkpoint (issue: the core).
//   npm run bench                       # logitlens only
//   LOGITLENS_BENCH_PYTHON=/path/to/venv/bin/python npm run bench   # plus the transformers peer
// Reports (a) first run (builds the ONNX model), (b) cached single-prompt runs, peak RSS of both,
// all as ratios measured in this run.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, gpt2SmallCheckpoint, mb, median, ROOT, timeCli, type CliRun } from './bench-common.js';

const PROMPT = 'The capital of France is';

function timeProcess(cmd: string, args: string[]): Promise<{ seconds: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve({ seconds: (performance.now() - t0) / 1000, stdout: out }) : reject(new Error(`${cmd} exited ${code}: ${err.slice(-2000)}`))));
  });
}


async function main(): Promise<void> {
  mkdirSync(BENCH_DIR, { recursive: true });
  const ck = gpt2SmallCheckpoint();
  const ckBytes = statSync(join(ck, 'model.safetensors')).size;
  const runs = Number(process.env.LOGITLENS_BENCH_RUNS ?? 5);
  const args = ['--model', ck, '--json', PROMPT];

  const firstRuns: CliRun[] = [];
  for (let i = 0; i < 3; i++) {
    const cache = join(BENCH_DIR, `xdg-first-${i}`);
    rmSync(cache, { recursive: true, force: true });
    firstRuns.push(await timeCli(args, { XDG_CACHE_HOME: cache }));
    rmSync(cache, { recursive: true, force: true });
  }
  const cache = join(BENCH_DIR, 'xdg-cached');
  await timeCli(args, { XDG_CACHE_HOME: cache }); // build once
  const cached: CliRun[] = [];
  for (let i = 0; i < runs; i++) cached.push(await timeCli(args, { XDG_CACHE_HOME: cache }));

  const first = median(firstRuns.map((r) => r.seconds));
  const warm = median(cached.map((r) => r.seconds));
  const lines = [
    `checkpoint: GPT-2-small shape (12 layers, 768 wide, 12 heads, vocab 50257), random F32 weights, ${mb(ckBytes)}`,
    `command:    logitlens --model ${ck} --json "${PROMPT}"`,
    `(a) first run, builds ONNX:  median ${first.toFixed(2)} s of ${firstRuns.map((r) => r.seconds.toFixed(2)).join(', ')} s (target < 6 s)`,
    `    peak RSS:                ${mb(Math.max(...firstRuns.map((r) => r.maxRssBytes)))} = ${(Math.max(...firstRuns.map((r) => r.maxRssBytes)) / ckBytes).toFixed(2)}× checkpoint (target < 1.5×)`,
    `(b) cached single prompt:    median ${warm.toFixed(3)} s of ${runs} (min ${Math.min(...cached.map((r) => r.seconds)).toFixed(3)} s) (target < 0.8 s)`,
    `    peak RSS:                ${mb(Math.max(...cached.map((r) => r.maxRssBytes)))} = ${(Math.max(...cached.map((r) => r.maxRssBytes)) / ckBytes).toFixed(2)}× checkpoint (target < 1.5×)`,
  ];
  const py = process.env.LOGITLENS_BENCH_PYTHON;
  if (py) {
    const peer: number[] = [];
    let imports = 0;
    for (let i = 0; i < 3; i++) {
      const r = await timeProcess(py, [join(ROOT, 'scripts', 'peer_transformers.py'), ck, PROMPT]);
      peer.push(r.seconds);
      imports = (JSON.parse(r.stdout) as { import_s: number }).import_s;
    }
    const p = median(peer);
    lines.push(`peer: transformers + torch (${py}), same checkpoint and analysis: median ${p.toFixed(2)} s of 3 (imports ${imports.toFixed(2)} s)`);
    lines.push(`ratio: cached logitlens is ${(p / warm).toFixed(1)}× faster than the Python recipe (measured in this run)`);
  } else {
    lines.push('peer: not run (set LOGITLENS_BENCH_PYTHON to a python with torch + transformers to measure the ratio)');
  }
  process.stdout.write(lines.join('\n') + '\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
    process.exit(1);
  });
}
