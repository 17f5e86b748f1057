// Batch-mode benchmark: throughput on a GPT-2-small-shaped random checkpoint, the FLOPs that work
// needs, and how close it comes to ONNX Runtime's own matrix-multiply speed on this machine.
//
//   node dist/scripts/bench-batch.js [--prompts 200] [--batch-size 32] [--threads N] [--dir PATH]
//
// The checkpoint (~500 MB) and its ONNX build are cached in --dir (default: $TMPDIR/logitlens-bench-batch).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  analyzeBatch, isError, jsonlLine, LoadedModel, loadOrt, prepareModelFolder, type BatchItem, type Gpt2Config,
} from '../src/index.js';
import { BENCH_DIR, gpt2SmallCheckpoint, ROOT, timeCli } from './bench-common.js';
import { GraphBuilder } from '../src/model/onnx/graph.js';
import { DType } from '../src/model/onnx/proto.js';

const WORDS = (
  'the of and to in is was for on that with as by at from his her they which this were are be been has had not but ' +
  'city river mountain history science music language village king war bridge market winter summer garden letter ' +
  'paper engine doctor teacher student window forest ocean island station library museum company railway'
).split(' ');

/** Deterministic prompts of 5..20 words (a linear congruential generator, so every run reads the same text). */
function makePrompts(n: number): string[] {
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return Array.from({ length: n }, () => {
    const len = 5 + Math.floor(next() * 16);
    const w = Array.from({ length: len }, () => WORDS[Math.floor(next() * WORDS.length)]);
    w[0] = w[0][0].toUpperCase() + w[0].slice(1);
    return w.join(' ');
  });
}

/**
 * FLOPs the analysis needs (multiply-adds count 2), per prompt of n tokens with |layers| lens rows:
 *   blocks:  L · (24·n·E² + 4·n²·E)     QKV 6E², attention out 2E², MLP 16E² per token; QKᵀ and A·V 2n²E
 *   logits:  2·E·V                      the model's next-token logits at the last token
 *   lens:    2·E·V · (|layers| + 1)     one unembedding per lens row, plus the P_model reference row
 * Padding, softmaxes, layer norms, top-k and the self-check are overhead, not counted as needed work.
 */
function flopsFor(c: Gpt2Config, tokens: number[], lensLayers: number): number {
  const { n_layer: L, n_embd: E, vocab_size: V } = c;
  return tokens.reduce((sum, n) => sum + L * (24 * n * E * E + 4 * n * n * E) + 2 * E * V + 2 * E * V * (lensLayers + 1), 0);
}
const FLOP_FORMULA = 'Σ_prompts [ L·(24·n·E² + 4·n²·E) + 2·E·V + 2·E·V·(|layers|+1) ]';

/** ONNX Runtime's MatMul speed on an N×N product: the peak this machine gives the same library. */
async function matmulPeak(n: number, threads: number | undefined, seconds: number): Promise<{ gflops: number; perCpuS: number; runs: number }> {
  const ort = await loadOrt();
  const g = new GraphBuilder('bench_matmul', 20);
  const a = g.input('a', DType.FLOAT, [n, n]);
  const b = g.input('b', DType.FLOAT, [n, n]);
  g.output(g.op('MatMul', [a, b]), 'c', DType.FLOAT, [n, n]);
  const session = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: threads ?? 0, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const data = new Float32Array(n * n).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const feeds = { a: new ort.Tensor('float32', data, [n, n]), b: new ort.Tensor('float32', data, [n, n]) };
  await session.run(feeds); // warm-up: thread pool and packing
  let best = Infinity;
  let runs = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  while (runs < 3 || performance.now() - t0 < seconds * 1000) {
    const t = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t);
    runs++;
  }
  const cpu = process.cpuUsage(cpu0);
  await session.release();
  const perCpuS = (2 * n ** 3 * runs) / ((cpu.user + cpu.system) / 1e6) / 1e9;
  return { gflops: (2 * n ** 3) / (best / 1000) / 1e9, perCpuS, runs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prompts: { type: 'string', default: '200' },
      'batch-size': { type: 'string' },
      threads: { type: 'string' },
      dir: { type: 'string', default: join(BENCH_DIR, 'batch-cache') },
      'matmul-n': { type: 'string', default: '2048' },
    },
  });
  const threads = values.threads ? Number(values.threads) : undefined;
  const batchSize = values['batch-size'] ? Number(values['batch-size']) : undefined;
  const log = (s: string) => process.stdout.write(s + '\n');

  log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; node ${process.version}`);
  let t = performance.now();
  const ckpt = gpt2SmallCheckpoint(log);
  const prepared = prepareModelFolder(ckpt, { cacheDir: values.dir, onBuild: () => log('building its ONNX graphs (once)…') });
  const prepMs = performance.now() - t;

  t = performance.now();
  const model = await LoadedModel.open(prepared.dir, { mode: 'batch', threads });
  const loadMs = performance.now() - t;
  const c = model.config;
  const prompts = makePrompts(Number(values.prompts));
  const tokens = prompts.map((p) => model.tokenizer.encode(p).length);
  const items: BatchItem[] = prompts.map((prompt, index) => ({ index, line: index + 1, prompt, targets: [], targetIds: [], fields: {} }));

  // the machine may be shared: measure the peak before and after the run and hold us to the higher
  const peakBefore = await matmulPeak(Number(values['matmul-n']), threads, 3);

  // warm-up on a few prompts, so the timed run measures steady throughput, not first-call setup
  for await (const r of analyzeBatch(model, items.slice(0, 4), { batchSize })) if (isError(r)) throw new Error(r.error);
  t = performance.now();
  const cpu0 = process.cpuUsage();
  let bytes = 0;
  for await (const r of analyzeBatch(model, items, { batchSize })) {
    if (isError(r)) throw new Error(r.error);
    bytes += jsonlLine(r).length; // the JSONL the CLI would write is part of the work
  }
  const runS = (performance.now() - t) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // below ~90% the cores were shared with other work and every figure here is pessimistic
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const cpuShare = cpuS / (runS * (threads ?? availableParallelism()));
  await model.close();

  const flops = flopsFor(c, tokens, c.n_layer + 1);
  const achieved = flops / runS / 1e9;
  const peakAfter = await matmulPeak(Number(values['matmul-n']), threads, 3);
  const peak = Math.max(peakBefore.gflops, peakAfter.gflops);
  const rate = prompts.length / runS;

  const meanTok = tokens.reduce((a, b) => a + b, 0) / tokens.length;
  log(`model: L=${c.n_layer} E=${c.n_embd} H=${c.n_head} V=${c.vocab_size} n_positions=${c.n_positions} (random weights)`);
  log(`prompts: ${prompts.length}, ${Math.min(...tokens)}–${Math.max(...tokens)} tokens (mean ${meanTok.toFixed(1)}); all ${c.n_layer + 1} layers, k=10, last position`);
  log(`setup: checkpoint + ONNX build ${(prepMs / 1000).toFixed(1)} s (cached after the first run), session load ${(loadMs / 1000).toFixed(1)} s`);
  log(`analysis: ${runS.toFixed(2)} s → ${rate.toFixed(1)} prompts/s (${(bytes / 1e6).toFixed(1)} MB of JSONL); CPU time ${(cpuShare * 100).toFixed(0)}% of wall × threads`);
  log(`FLOPs needed: ${FLOP_FORMULA}`);
  log(`            = ${(flops / 1e9).toFixed(1)} GFLOP → ${achieved.toFixed(1)} GFLOP/s achieved`);
  const n = values['matmul-n'];
  log(`ONNX Runtime MatMul ${n}×${n}: ${peakBefore.gflops.toFixed(1)} GFLOP/s before, ${peakAfter.gflops.toFixed(1)} after (best of ${peakBefore.runs}/${peakAfter.runs} runs each)`);
  log(`fraction of peak: ${achieved.toFixed(1)} / ${peak.toFixed(1)} = ${((achieved / peak) * 100).toFixed(0)}% (target ≥ 60%)`);
  // per CPU-second, both sides are fair on a shared machine (ORT's spin-waits count against us)
  const perCpu = flops / cpuS / 1e9;
  const peakPerCpu = Math.max(peakBefore.perCpuS, peakAfter.perCpuS);
  log(`per CPU-second: ${perCpu.toFixed(1)} GFLOP vs MatMul ${peakPerCpu.toFixed(1)} GFLOP = ${((perCpu / peakPerCpu) * 100).toFixed(0)}% (robust to other load on the machine)`);
  // whole process against whole process: the CLI as a user runs it, and the Python recipe
  const promptsFile = join(BENCH_DIR, 'bench-batch-prompts.txt');
  writeFileSync(promptsFile, prompts.join('\n') + '\n');
  const cacheEnv = { XDG_CACHE_HOME: join(BENCH_DIR, 'batch-cli-cache') };
  await timeCli(['--model', ckpt, '--file', promptsFile, '--jsonl', '-k', '1'], cacheEnv); // build once
  const cli = await timeCli(['--model', ckpt, '--file', promptsFile, '--jsonl'], cacheEnv);
  log(`whole process: logitlens --model ${ckpt} --file ${promptsFile} --jsonl: ${cli.seconds.toFixed(2)} s (${(prompts.length / cli.seconds).toFixed(1)} prompts/s), peak RSS ${(cli.maxRssBytes / 1e6).toFixed(0)} MB`);
  const py = process.env.LOGITLENS_BENCH_PYTHON;
  if (py) {
    const t0 = performance.now();
    const out = execFileSync(py, [join(ROOT, 'scripts', 'peer_transformers_batch.py'), ckpt, promptsFile], { encoding: 'utf8' });
    const whole = (performance.now() - t0) / 1000;
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { compute_s: number; import_s: number };
    log(`peer: transformers + torch (${py}), batches of 32, same prompts and analysis: ${whole.toFixed(2)} s whole process, ${r.compute_s.toFixed(2)} s compute, ${r.import_s.toFixed(2)} s imports`);
    log(`ratio (measured in this run): whole process ${(whole / cli.seconds).toFixed(2)}× faster (target ≥ 2×); analysis vs compute ${(r.compute_s / runS).toFixed(2)}×`);
  } else {
    log('peer: not run (set LOGITLENS_BENCH_PYTHON to a python with torch + transformers); the issue quotes ~15 s whole process, 7.9 s compute');
  }
}

await main();
