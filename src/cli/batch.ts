import { createReadStream, existsSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { Option } from 'commander';
import { ExitStatus, LogitlensError, UsageError } from '../errors.js';
import { validateK } from '../lens/analyze.js';
import { isError, parseItems, readLines, type InputFormat, type RawLine } from '../batch/input.js';
import { CsvWriter, jsonlLine } from '../batch/output.js';
import { analyzeBatch, DEFAULT_BATCH_SIZE, type BatchRecord } from '../batch/run.js';
import { renderSummary, SummaryAccumulator } from '../batch/summary.js';
import { terminalStyle } from '../render/table.js';
import { parseCommonFlags, parseIntStrict, parseLayers } from './args.js';
import { note, openModel, write } from './io.js';
import type { MainOptions } from './main.js';
import { resolveTargets } from './targets.js';

export interface BatchFlags {
  file: string;
  inputFormat?: InputFormat;
  escapes?: boolean;
  jsonl?: boolean;
  csv?: boolean;
  summary?: boolean;
  batchSize?: string;
  keepGoing?: boolean;
  truncate?: 'left' | 'right';
  shard?: string;
}

export const BATCH_HELP = `
Batch mode (--file):
  $ logitlens --model ./gpt2 --file prompts.txt > lens.jsonl
  $ logitlens --model ./gpt2 --file prompts.jsonl --csv --target " Paris" > lens.csv
  $ logitlens --model ./gpt2 --file prompts.txt --summary
  $ cat prompts.txt | logitlens --model ./gpt2 --file - --jsonl | head -n 3
  $ for i in 0 1 2 3; do logitlens --model ./gpt2 --file p.txt --shard $i/4 > part$i.jsonl & done; wait
  $ cat part*.jsonl | jq -s -c 'sort_by(.index)[]' > all.jsonl`;

export function addBatchOptions(program: Command): Command {
  return program
    .option('--file <path>', 'analyze every prompt in a file (.txt: one per line; .jsonl: {"prompt": …} per line; - = stdin)')
    .addOption(new Option('--input-format <format>', 'input format, instead of guessing from the extension').choices(['txt', 'jsonl']))
    .option('--escapes', 'txt input: read \\n, \\t, \\r and \\\\ in a line as the characters')
    .option('--jsonl', 'batch output: one JSON object per prompt (default when stdout is not a terminal)')
    .option('--csv', 'batch output: one CSV row per prompt and layer')
    .option('--summary', 'batch output: per-layer statistics across all prompts and the lock-in layer distribution (a table; JSON with --json)')
    .option('--batch-size <n>', `prompts per forward pass (default ${DEFAULT_BATCH_SIZE}; long prompts make smaller batches)`)
    .option('--keep-going', 'write an error record for a bad line and go on (exit status 1 at the end)')
    .addOption(new Option('--truncate <end>', 'cut prompts longer than the context from this end instead of failing the line').choices(['left', 'right']))
    .option('--shard <i/n>', 'process only lines whose 0-based index is i modulo n')
    .addHelpText('after', BATCH_HELP);
}

type OutputMode = 'jsonl' | 'csv' | 'summary';

function outputMode(o: MainOptions & BatchFlags): OutputMode {
  const picked = (['jsonl', 'csv', 'summary'] as const).filter((m) => o[m]);
  if (picked.length > 1) throw new UsageError(`--${picked.join(' and --')} are different outputs; pick one`);
  if (picked.length === 1) return picked[0];
  if (o.json) return 'jsonl';
  return process.stdout.isTTY ? 'summary' : 'jsonl';
}

export function parseShard(spec: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new UsageError(`--shard "${spec}" must be i/n with 0 <= i < n, e.g. --shard 0/4 … --shard 3/4`);
  }
  return { index, count };
}

function inputFormat(file: string, explicit?: InputFormat): InputFormat {
  if (explicit) return explicit;
  return /\.(jsonl|ndjson)$/i.test(file) ? 'jsonl' : 'txt';
}

function openInput(file: string): { stream: Readable; size?: number } {
  if (file === '-') return { stream: process.stdin };
  if (!existsSync(file)) throw new LogitlensError(`--file ${file} does not exist; give a .txt or .jsonl file of prompts, or - for stdin`);
  const st = statSync(file);
  if (st.isDirectory()) throw new LogitlensError(`--file ${file} is a folder; give a .txt or .jsonl file of prompts`);
  return { stream: createReadStream(file, { highWaterMark: 1 << 20 }), size: st.isFile() ? st.size : undefined };
}

/** "1,234 prompts · 56.7/s · ETA 0:42" on one self-overwriting stderr line. */
class Progress {
  private readonly start = Date.now();
  private last = 0;
  /** where each line read but not yet written ends: the ETA follows lines written, not read ahead */
  readonly ends = new Map<number, number>();
  private bytes = 0;
  done = 0;
  constructor(private readonly size: number | undefined, private readonly on: boolean) {}

  lines(raw: AsyncIterable<RawLine>): AsyncGenerator<RawLine> {
    const ends = this.ends;
    const on = this.on;
    return (async function* () {
      for await (const l of raw) {
        if (on) ends.set(l.line, l.end);
        yield l;
      }
    })();
  }

  /** A record for input line `line` was written. */
  wrote(line: number, ok: boolean): void {
    if (ok) this.done++;
    this.bytes = this.ends.get(line) ?? this.bytes;
    // lines skipped before this one (blank, other shards) never come back: forget them too
    for (const key of this.ends.keys()) {
      if (key > line) break;
      this.ends.delete(key);
    }
    this.tick();
  }

  tick(force = false): void {
    if (!this.on) return;
    const now = Date.now();
    if (!force && now - this.last < 200) return;
    this.last = now;
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    let eta = '';
    if (this.size && this.bytes > 0 && rate > 0) {
      const total = this.done * (this.size / Math.min(this.bytes, this.size));
      eta = ` · ETA ${clock(Math.max(0, total - this.done) / rate)}`;
    }
    process.stderr.write(`\r\x1b[K${this.done.toLocaleString('en-US')} prompts · ${rate.toFixed(1)}/s${eta}`);
  }

  clear(): void {
    if (this.on) process.stderr.write('\r\x1b[K');
  }
}

function clock(s: number): string {
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const mm = String(Math.floor((t % 3600) / 60)).padStart(h ? 2 : 1, '0');
  const ss = String(t % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export async function batchAction(words: string[], o: MainOptions & BatchFlags): Promise<void> {
  if (words.length) throw new UsageError('give either a prompt or --file, not both');
  const { threads, k, position, targetIds } = parseCommonFlags(o);
  const mode = outputMode(o);
  const format = inputFormat(o.file, o.inputFormat);
  if (o.escapes && format !== 'txt') throw new UsageError('--escapes applies to txt input only; in JSONL, write "\\n" inside the JSON string');
  const shard = o.shard === undefined ? undefined : parseShard(o.shard);
  const batchSize = o.batchSize === undefined || o.batchSize === 'auto' ? undefined : parseIntStrict('--batch-size', o.batchSize);
  if (batchSize !== undefined && batchSize < 1) throw new UsageError('--batch-size must be at least 1');
  const input = openInput(o.file);

  const { model, id } = await openModel(o.model, { threads, revision: o.revision, implicit: o.modelIsDefault, mode: 'batch' });
  let stopping = false;
  const onSigint = () => {
    // a second Ctrl-C means now
    if (stopping) process.exit(130);
    stopping = true;
  };
  process.on('SIGINT', onSigint);
  const progress = new Progress(input.size, !!process.stderr.isTTY);
  try {
    const c = model.config;
    validateK(k, c.vocab_size);
    const layers = o.layers === undefined ? undefined : parseLayers(o.layers, c.n_layer);
    const targets = resolveTargets(model, o.target ?? [], targetIds, note);
    const items = parseItems(progress.lines(readLines(input.stream)), { format, escapes: o.escapes, shard });
    const records = analyzeBatch(model, items, {
      k, layers, position, finalNorm: o.finalNorm, targets, batchSize, truncate: o.truncate, modelId: id, onWarning: note,
    });
    const clashes = new Set<string>();
    const onClash = (key: string) => {
      if (!clashes.has(key)) note(`input field "${key}" has the name of an output field; the output keeps its own (rename the field to keep it)`);
      clashes.add(key);
    };
    const csv = new CsvWriter(targets.length);
    const summary = new SummaryAccumulator();
    if (mode === 'csv') await write(csv.header());
    let failed = 0;
    let seen = 0;
    const emit = async (r: BatchRecord) => {
      seen++;
      if (isError(r)) {
        if (!o.keepGoing) throw new LogitlensError(`${r.error}. Fix the line, or pass --keep-going to record the error and go on`);
        failed++;
        progress.clear();
        note(`${r.error} (recorded; going on)`);
      }
      if (mode === 'jsonl') await write(jsonlLine(r, onClash));
      else if (mode === 'csv') await write(csv.rows(r));
      else summary.add(r);
      progress.wrote(r.line, !isError(r));
    };
    for await (const r of records) {
      await emit(r);
      if (stopping) break;
    }
    progress.clear();
    if (stopping) note(`interrupted after ${seen} line${seen === 1 ? '' : 's'}; ${mode === 'summary' ? 'the summary covers those' : 'the output ends at a whole record'}`);
    if (mode === 'summary') {
      const s = summary.result();
      await write(o.json ? JSON.stringify(s, null, 2) + '\n' : renderSummary(s, (t) => model.tokenizer.token(t), terminalStyle(process.stdout)));
    }
    if (stopping) throw new ExitStatus(130);
    if (failed) throw new LogitlensError(`${failed} of ${seen} lines failed (error records written); the other results are complete`);
  } finally {
    process.off('SIGINT', onSigint);
    progress.clear();
    input.stream.destroy();
    await model.close();
  }
}
