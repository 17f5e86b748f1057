// Batch mode: input parsing, padding parity with single-prompt runs, output formats, summaries,
// and the CLI's behaviour on bad input, closed pipes and Ctrl-C.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  analyzeBatch, analyzePrompt, csvField, CsvWriter, isError, jsonlObject, LoadedModel, lockIn, parseItems, prepareModelFolder,
  readLines, SummaryAccumulator, type BatchItem, type BatchRecord, type LensReport, type PromptRecord,
} from '../src/index.js';
import { BIN, fixtureDir, tempDir } from './helpers/fixtures.js';

const WORDS = ['The', 'capital', 'of', 'France', 'is', 'a', 'city', 'where', 'people', 'walk', 'by', 'river', 'and', 'read', 'old', 'books'];

/** Deterministic prompts of 1..n words, lengths deliberately out of order. */
function prompts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const len = 1 + ((i * 7) % 13);
    return Array.from({ length: len }, (_, j) => WORDS[(i * 3 + j * 5) % WORDS.length]).join(' ');
  });
}

async function collect(gen: AsyncIterable<BatchRecord>): Promise<BatchRecord[]> {
  const out: BatchRecord[] = [];
  for await (const r of gen) out.push(r);
  return out;
}

async function items(text: string | Buffer, format: 'txt' | 'jsonl', extra: { escapes?: boolean; shard?: { index: number; count: number } } = {}): Promise<BatchItem[]> {
  const out: BatchItem[] = [];
  // two-byte chunks: lines and UTF-8 characters split across reads must come out whole
  const buf = Buffer.from(text);
  const chunks = Array.from({ length: Math.ceil(buf.length / 2) }, (_, i) => buf.subarray(i * 2, i * 2 + 2));
  for await (const it of parseItems(readLines(Readable.from(chunks)), { format, ...extra })) out.push(it);
  return out;
}

describe('batch input', () => {
  it('splits lines on raw bytes: CRLF, no final newline, blank lines, BOM, characters split across chunks', async () => {
    const got = await items('\uFEFFfirst line\r\n\n  \nd\u00e9j\u00e0 vu\nlast', 'txt');
    assert.deepEqual(got.map((x) => [x.index, x.line, isError(x) ? x.error : x.prompt]), [
      [0, 1, 'first line'], [3, 4, 'd\u00e9j\u00e0 vu'], [4, 5, 'last'],
    ]);
  });

  it('turns escapes into characters only with --escapes', async () => {
    const line = 'a\\nb\\tc\\\\n';
    const plain = await items(line, 'txt');
    const esc = await items(line, 'txt', { escapes: true });
    assert.equal((plain[0] as { prompt: string }).prompt, line);
    assert.equal((esc[0] as { prompt: string }).prompt, 'a\nb\tc\\n');
  });

  it('names the line of invalid UTF-8 and of malformed JSONL', async () => {
    const bad = Buffer.concat([Buffer.from('ok\n'), Buffer.from([0x61, 0xff, 0x62]), Buffer.from('\nfine\n')]);
    const got = await items(bad, 'txt');
    assert.equal(got.length, 3);
    assert.ok(isError(got[1]) && /^line 2: not valid UTF-8 .*0xff at byte 2/.test(got[1].error), JSON.stringify(got[1]));
    const j = await items('{"prompt": "a"}\n{"prompt": \n[1]\n{"text": "x"}\n{"prompt": "b", "targets": [1]}\n', 'jsonl');
    assert.deepEqual(j.map((x) => (isError(x) ? x.error.split(':')[0] : 'ok')), ['ok', 'line 2', 'line 3', 'line 4', 'line 5']);
    assert.match((j[3] as { error: string }).error, /"prompt" must be a string/);
  });

  it('passes JSONL fields through and reads per-prompt targets', async () => {
    const [x] = await items('{"id": {"a": 1}, "prompt": "Hi", "targets": [" Paris"], "target_ids": [5], "label": null}', 'jsonl');
    assert.ok(!isError(x));
    assert.deepEqual(x.fields, { id: { a: 1 }, label: null });
    assert.deepEqual([x.targets, x.targetIds], [[' Paris'], [5]]);
  });

  it('keeps the lines of one shard by line index', async () => {
    const text = ['a', 'b', '', 'd', 'e', 'f', 'g'].join('\n');
    const got = await items(text, 'txt', { shard: { index: 1, count: 3 } });
    assert.deepEqual(got.map((x) => x.index), [1, 4]); // index 7 does not exist; the blank line 2 would be index 2 of shard 2
  });
});

describe('batch analysis (gpt2-tiny)', () => {
  const cache = tempDir();
  let model: LoadedModel;
  let onnxDir: string;

  before(async () => {
    onnxDir = prepareModelFolder(fixtureDir(), { cacheDir: cache.dir }).dir;
    model = await LoadedModel.open(onnxDir, { mode: 'batch' });
  });
  after(async () => {
    await model?.close();
    cache.cleanup();
  });

  const asItems = (ps: string[]): BatchItem[] => ps.map((prompt, index) => ({ index, line: index + 1, prompt, targets: [], targetIds: [], fields: {} }));

  function assertSameReport(a: LensReport, b: LensReport, where: string): void {
    assert.deepEqual(a.tokens, b.tokens, where);
    assert.equal(a.position, b.position, where);
    assert.equal(a.layers.length, b.layers.length, where);
    const close = (x: number, y: number, what: string) => assert.ok(Math.abs(x - y) <= 1e-5, `${where} ${what}: ${x} vs ${y}`);
    a.layers.forEach((la, i) => {
      const lb = b.layers[i];
      close(la.entropy, lb.entropy, `layer ${la.layer} entropy`);
      close(la.kl_to_final, lb.kl_to_final, `layer ${la.layer} KL`);
      la.top.forEach((t, j) => {
        close(t.prob, lb.top[j].prob, `layer ${la.layer} top[${j}] prob`);
        close(t.logit, lb.top[j].logit, `layer ${la.layer} top[${j}] logit`);
        // ids may swap only where the logits tie in float32
        if (t.id !== lb.top[j].id) close(t.logit, lb.top[j].logit, `layer ${la.layer} swapped top[${j}]`);
      });
      la.targets.forEach((t, j) => {
        assert.equal(t.id, lb.targets[j].id);
        close(t.prob, lb.targets[j].prob, `layer ${la.layer} target ${t.id} prob`);
        assert.equal(t.rank, lb.targets[j].rank, `${where} layer ${la.layer} target rank`);
      });
    });
  }

  it('gives the numbers of one-by-one runs, padded and length-sorted, in input order', async () => {
    const ps = prompts(23);
    const targets = [6342, 13];
    for (const opts of [{ position: -1, finalNorm: true }, { position: 0, finalNorm: false, layers: [1, 2] }]) {
      const recs = await collect(analyzeBatch(model, asItems(ps), { ...opts, k: 3, targets, batchSize: 5, window: 12, lensChunkRows: 7 }));
      assert.deepEqual(recs.map((r) => r.index), ps.map((_, i) => i));
      for (const [i, r] of recs.entries()) {
        assert.ok(!isError(r));
        const single = await analyzePrompt(model, ps[i], { ...opts, k: 3, targets }, model.dir);
        assertSameReport(r.report, single, `prompt ${i} ${JSON.stringify(opts)}`);
        // the lock-in layer follows from the reported top-1s and the model's own top-1
        const top1 = r.report.layers.map((l) => l.top[0].id);
        assert.equal(r.lockInLayer, lockIn(r.report.layers.map((l) => l.layer), top1, r.finalTop1));
      }
      if (opts.finalNorm) {
        // with ln_f, the last layer's lens is the model's own prediction
        for (const r of recs as PromptRecord[]) assert.equal(r.report.layers.at(-1)!.top[0].id, r.finalTop1);
      }
    }
  });

  it('streams: a record comes out before the source gives the next line', async () => {
    let gotFirst!: () => void;
    const first = new Promise<void>((res) => (gotFirst = res));
    async function* source(): AsyncGenerator<BatchItem> {
      yield asItems(['Hello there'])[0];
      await first; // a pipe whose writer waits for our answer: waiting for a full window would hang
      yield { ...asItems(['Bye now'])[0], index: 1, line: 2 };
    }
    const seen: number[] = [];
    for await (const r of analyzeBatch(model, source(), { k: 1, batchSize: 8 })) {
      seen.push(r.index);
      gotFirst();
    }
    assert.deepEqual(seen, [0, 1]);
  });

  it('reports per-prompt targets after the shared ones, and bad lines as error records', async () => {
    const its: BatchItem[] = [
      { index: 0, line: 1, prompt: 'Hello there', targets: [' world'], targetIds: [50256], fields: { id: 'a' } },
      { index: 2, line: 3, prompt: 'word '.repeat(200), targets: [], targetIds: [], fields: {} },
      { index: 3, line: 4, prompt: 'Hi', targets: [], targetIds: [99999999], fields: {} },
    ];
    const recs = await collect(analyzeBatch(model, its, { targets: [13], k: 1 }));
    const r0 = recs[0] as PromptRecord;
    assert.deepEqual(r0.report.layers[0].targets.map((t) => t.id), [13, model.tokenizer.encode(' world')[0], 50256]);
    assert.ok(isError(recs[1]) && /^line 3: the prompt is \d+ tokens long .*--truncate/.test(recs[1].error), JSON.stringify(recs[1]));
    assert.ok(isError(recs[2]) && /^line 4: target id 99999999/.test(recs[2].error));
    const cut = await collect(analyzeBatch(model, [its[1]], { k: 1, truncate: 'left' }));
    const c0 = cut[0] as PromptRecord;
    assert.equal(c0.report.tokens.length, 128);
    assert.equal(c0.dropped, model.tokenizer.encode('word '.repeat(200)).length - 128);
  });

  it('writes JSONL objects with index, pass-through fields, the report and the lock-in layer', async () => {
    const [r] = await collect(analyzeBatch(model, [{ index: 4, line: 5, prompt: 'Hi', targets: [], targetIds: [], fields: { id: 7, version: 'mine', note: 'x' } }], { k: 1 }));
    const clashes: string[] = [];
    const o = jsonlObject(r, (key) => clashes.push(key));
    assert.deepEqual(Object.keys(o).slice(0, 4), ['index', 'id', 'note', 'version']);
    assert.equal(o.version, 1);
    assert.deepEqual(clashes, ['version']);
    assert.equal(o.lock_in_layer, (r as PromptRecord).lockInLayer);
    assert.deepEqual(jsonlObject({ index: 3, line: 4, error: 'line 4: bad' }), { index: 3, error: 'line 4: bad' });
  });

  it('writes CSV rows per prompt and layer with proper quoting', async () => {
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('x\ny'), '"x\ny"');
    assert.equal(csvField(' plain'), ' plain');
    const recs = await collect(analyzeBatch(model, asItems(['One, two', 'Three "four"']), { k: 1, targets: [11] }));
    const w = new CsvWriter(1);
    const header = w.header().trimEnd().split(',');
    const text = w.header() + recs.map((r) => w.rows(r)).join('') + w.rows({ index: 9, line: 10, error: 'line 10: bad, "really"' });
    const rows = parseCsv(text);
    assert.equal(rows.length, 1 + 2 * 4 + 1);
    assert.ok(rows.every((r) => r.length === header.length), 'every row has every column');
    const first = (recs[0] as PromptRecord).report.layers[0];
    const row1 = Object.fromEntries(header.map((h, i) => [h, rows[1][i]]));
    assert.equal(row1.top1_token, first.top[0].token);
    assert.equal(Number(row1.entropy), first.entropy);
    assert.equal(Number(row1.target1_prob), first.targets[0].prob);
    assert.equal(rows.at(-1)!.at(-1), 'line 10: bad, "really"');
  });

  it('summarizes per layer and the lock-in distribution', async () => {
    const recs = await collect(analyzeBatch(model, asItems(prompts(9)), { k: 1, targets: [13] }));
    const acc = new SummaryAccumulator();
    for (const r of [...recs, { index: 99, line: 100, error: 'x' }]) acc.add(r);
    const s = acc.result();
    const ok = recs as PromptRecord[];
    assert.equal(s.prompts, 9);
    assert.equal(s.errors, 1);
    for (const [i, l] of s.layers.entries()) {
      const ent = ok.map((r) => r.report.layers[i].entropy);
      const sorted = [...ent].sort((a, b) => a - b);
      assert.ok(Math.abs(l.mean_entropy - ent.reduce((a, b) => a + b) / 9) < 1e-5);
      assert.ok(Math.abs(l.median_entropy - sorted[4]) < 1e-5);
      assert.equal(l.top1_agreement, ok.filter((r) => r.report.layers[i].top[0].id === r.finalTop1).length / 9);
      const tp = ok.map((r) => r.report.layers[i].targets[0]);
      assert.ok(Math.abs(l.targets[0].mean_rank - tp.reduce((a, t) => a + t.rank, 0) / 9) < 1e-9);
    }
    assert.equal(s.layers.at(-1)!.top1_agreement, 1);
    assert.equal(s.lock_in.distribution.reduce((a, d) => a + d.count, 0) + s.lock_in.never, 9);
    for (const d of s.lock_in.distribution) assert.equal(d.count, ok.filter((r) => r.lockInLayer === d.layer).length);
    assert.deepEqual(lockIn([0, 1, 2, 3], [5, 7, 7, 7], 7), 1);
    assert.equal(lockIn([0, 1, 2], [7, 7, 5], 7), null);
    assert.equal(lockIn([0, 1, 2], [7, 5, 7], 7), 2);
  });
});

/** Minimal RFC 4180 reader for checking our writer. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let f = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') (f += '"'), i++;
      else if (ch === '"') q = false;
      else f += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') row.push(f), (f = '');
    else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(f), rows.push(row), (row = []), (f = ''), i++;
    } else f += ch;
  }
  return rows;
}

describe('batch CLI', () => {
  const tmp = tempDir();
  let onnxDir: string;
  before(() => {
    onnxDir = prepareModelFolder(fixtureDir(), { cacheDir: tmp.dir }).dir;
  });
  after(() => tmp.cleanup());

  const env = () => ({ ...process.env, XDG_CACHE_HOME: tmp.dir, NO_COLOR: '1' });
  const file = (name: string, body: string | Buffer) => {
    const p = join(tmp.dir, name);
    writeFileSync(p, body);
    return p;
  };
  const run = (args: string[], input?: string) => {
    const r = spawnSync(process.execPath, [BIN, '--model', onnxDir, '-k', '1', ...args], { env: env(), input, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
  };

  it('empty input: empty output, exit 0', () => {
    const r = run(['--file', file('empty.txt', '')]);
    assert.deepEqual([r.code, r.out, r.err], [0, '', '']);
  });

  it('stops at a malformed JSONL line, naming it, after writing the lines before it', () => {
    const p = file('bad.jsonl', '{"prompt": "Hi", "id": "a"}\n{"prompt": "Yo"}\n{"prompt" "x"}\n{"prompt": "Later"}\n');
    const r = run(['--file', p]);
    assert.equal(r.code, 1);
    assert.match(r.err, /line 3: not valid JSON.*--keep-going/);
    assert.deepEqual(r.lines.map((l) => JSON.parse(l).index), [0, 1]);
    const k = run(['--file', p, '--keep-going']);
    assert.equal(k.code, 1);
    const recs = k.lines.map((l) => JSON.parse(l));
    assert.deepEqual(recs.map((x) => x.index), [0, 1, 2, 3]);
    assert.match(recs[2].error, /^line 3: not valid JSON/);
    assert.equal(recs[0].id, 'a');
    assert.match(k.err, /1 of 4 lines failed/);
    const u = run(['--file', file('bad.txt', Buffer.concat([Buffer.from('fine\n'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]))]);
    assert.equal(u.code, 1);
    assert.match(u.err, /line 2: not valid UTF-8/);
    assert.equal(u.lines.length, 1);
  });

  it('fails a line longer than the context unless --truncate; reads stdin with --file -', () => {
    const long = 'word '.repeat(300);
    const r = run(['--file', '-', '--keep-going'], `Hi\n${long}\n`);
    assert.equal(r.code, 1);
    assert.match(JSON.parse(r.lines[1]).error, /line 2: the prompt is \d+ tokens long/);
    const t = run(['--file', '-', '--truncate', 'right'], `Hi\n${long}\n`);
    assert.equal(t.code, 0, t.err);
    assert.equal(JSON.parse(t.lines[1]).tokens.length, 128);
  });

  it('shards by line index; the shards together are the whole run', () => {
    const p = file('many.txt', prompts(11).join('\n') + '\n');
    const whole = run(['--file', p, '--layers', '3']).lines;
    const parts = [0, 1, 2].flatMap((i) => run(['--file', p, '--layers', '3', '--shard', `${i}/3`]).lines);
    const byIndex = (ls: string[]) => ls.map((l) => JSON.parse(l) as LensReport & { index: number }).sort((a, b) => a.index - b.index);
    const [a, b] = [byIndex(parts), byIndex(whole)];
    assert.deepEqual(a.map((x) => x.index), b.map((x) => x.index));
    // other batch-mates, same numbers (to float32 noise)
    a.forEach((x, i) => {
      assert.deepEqual(x.tokens, b[i].tokens);
      assert.ok(Math.abs(x.layers[0].entropy - b[i].layers[0].entropy) < 1e-5);
    });
    assert.equal(run(['--file', p, '--shard', '3/3']).code, 2);
    assert.equal(run(['--file', p, '--csv', '--summary']).code, 2);
  });

  it('prints the summary as JSON with --json', () => {
    const r = run(['--file', file('s.txt', 'Hello world\nThe capital of France is\n'), '--summary', '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.prompts, 2);
    assert.equal(s.layers.length, 4);
  });

  /** Spawn with a long input; `onLine` sees each stdout line as it arrives. */
  function live(lines: number, onLine: (line: string, child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; lines: string[]; err: string; ms: number }> {
    const p = file(`live${lines}.txt`, prompts(lines).join('\n') + '\n');
    const t0 = Date.now();
    const child = spawn(process.execPath, [BIN, '--model', onnxDir, '-k', '1', '--file', p, '--batch-size', '4'], { env: env() });
    const got: string[] = [];
    let err = '';
    let buf = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        got.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        onLine(got.at(-1)!, child);
      }
    });
    return new Promise((res) => child.on('close', (code) => res({ code, lines: buf ? [...got, buf] : got, err, ms: Date.now() - t0 })));
  }

  it('ends quickly and quietly when the reader goes away (| head -n 3)', async () => {
    let n = 0;
    const r = await live(3000, (_, child) => {
      if (++n === 3) child.stdout!.destroy();
    });
    assert.equal(r.code, 0);
    assert.equal(r.err, '');
    assert.ok(r.ms < 20000, `took ${r.ms} ms for 3 of 3000 lines`);
  });

  it('finishes the current line on Ctrl-C and exits 130', async () => {
    let sent = false;
    const r = await live(3000, (_, child) => {
      if (!sent) child.kill('SIGINT');
      sent = true;
    });
    assert.equal(r.code, 130);
    assert.match(r.err, /interrupted/);
    assert.ok(r.lines.length >= 1 && r.lines.length < 3000);
    for (const l of r.lines) JSON.parse(l); // every line whole
  });
});
