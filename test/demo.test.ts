// The trained demo model in the box: offline fallback, every output mode end to end, and the
// properties only a model that learned something has.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyzeBatch, analyzePrompt, LoadedModel, resolveModel, type BatchItem } from '../src/index.js';
import { DEMO_DIR } from '../src/model/resolve.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

const tmp = tempDir();
// offline and with empty caches: what a user without network meets
const env = {
  XDG_CACHE_HOME: join(tmp.dir, 'xdg'), HF_HUB_CACHE: join(tmp.dir, 'hf'), HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9',
};
after(() => tmp.cleanup());

describe('demo model: the files', () => {
  it('ships GPT-2-shaped files within 16 MB, with a model card', () => {
    const files = ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'README.md'];
    for (const f of files) assert.ok(existsSync(join(DEMO_DIR, f)), `models/demo/${f}`);
    const total = files.reduce((a, f) => a + statSync(join(DEMO_DIR, f)).size, 0);
    assert.ok(total <= 16_000_000, `models/demo is ${total} bytes`);
    const cfg = JSON.parse(readFileSync(join(DEMO_DIR, 'config.json'), 'utf8'));
    assert.equal(cfg.model_type, 'gpt2');
    assert.equal(cfg.vocab_size, 50257);
  });
});

describe('demo model: what it learned', () => {
  let model: LoadedModel;
  before(async () => {
    const r = await resolveModel('demo', { cacheDir: join(tmp.dir, 'lib-cache') });
    model = await LoadedModel.open(r.dir);
  });
  after(async () => model.close());

  it('the last-layer lens top-1 is the model’s greedy next token', async () => {
    for (const prompt of ['He lives in the United', 'The man said that he would', 'It was the first time that']) {
      const report = await analyzePrompt(model, prompt, { k: 1 });
      const fwd = await model.forward([model.tokenizer.encode(prompt)]);
      let best = 0;
      for (let v = 1; v < fwd.logits.length; v++) if (fwd.logits[v] > fwd.logits[best]) best = v;
      assert.equal(report.layers.at(-1)!.top[0].id, best, prompt);
    }
  });

  it('knows a frequent collocation: " States" after "He lives in the United"', async () => {
    const r = await analyzePrompt(model, 'He lives in the United', { k: 5 });
    assert.equal(r.layers.at(-1)!.top[0].token, ' States');
  });

  it('on held-out sentences the mean KL to the final distribution falls with depth', async () => {
    const lines = readFileSync(join(DEMO_DIR, 'heldout.txt'), 'utf8').split('\n').filter((l) => l.trim());
    assert.ok(lines.length >= 10);
    const items: BatchItem[] = lines.map((prompt, index) => ({ index, line: index + 1, prompt, targets: [], targetIds: [], fields: {} }));
    const L = model.config.n_layer;
    const sums = new Array<number>(L + 1).fill(0);
    let n = 0;
    for await (const r of analyzeBatch(model, items, { k: 1, truncate: 'left' })) {
      assert.ok(!('error' in r), JSON.stringify(r));
      if ('error' in r) continue;
      r.report.layers.forEach((l) => (sums[l.layer] += l.kl_to_final));
      n++;
    }
    const mean = sums.map((s) => s / n);
    assert.ok(mean[0] > mean[L], `mean KL by layer: ${mean.map((x) => x.toFixed(3)).join(', ')}`);
    for (let l = 1; l <= L; l++) assert.ok(mean[l] < mean[l - 1], `mean KL by layer: ${mean.map((x) => x.toFixed(3)).join(', ')}`);
  });
});

describe('demo model: offline quick start and every output mode', () => {
  it('with no --model and no network, the default falls back to the demo with a warning', async () => {
    const r = await runCli(['--json', 'The capital of France is'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).model.id, 'demo');
    assert.match(r.stderr, /warning: gpt2 is not available \(HF_HUB_OFFLINE is set\).*demo model.*logitlens pull gpt2/);
  });

  it('an explicit --model gpt2 never falls back', async () => {
    const r = await runCli(['--model', 'gpt2', 'Hello'], env);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /HF_HUB_OFFLINE/);
  });

  it('table, JSON, grid, attention, CSV, summary and HTML all work on it', async () => {
    const demo = ['--model', 'demo'];
    const table = await runCli([...demo, 'He lives in the United'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /·States/);

    const grid = await runCli([...demo, '--grid', '--attention', 'all', '--json', 'He lives in the United'], env);
    assert.equal(grid.code, 0, grid.stderr);
    const g = JSON.parse(grid.stdout);
    assert.equal(g.positions.length, 5);
    assert.equal(g.attention.length, g.model.n_layer);

    const lines = 'The capital of France is\nHe lives in the United\nIt was the first time that\n';
    const jsonl = await runCli([...demo, '--file', '-', '--jsonl', '--target', ' States'], env, lines);
    assert.equal(jsonl.code, 0, jsonl.stderr);
    const recs = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(recs.map((r) => r.index), [0, 1, 2]);
    assert.equal(recs[1].layers.at(-1).targets[0].rank, 1);

    const csv = await runCli([...demo, '--file', '-', '--csv', '-k', '1'], env, lines);
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout.trim().split('\n').length, 1 + 3 * (g.model.n_layer + 1));

    const summary = await runCli([...demo, '--file', '-', '--summary', '--json'], env, lines);
    assert.equal(summary.code, 0, summary.stderr);
    assert.ok(JSON.parse(summary.stdout));

    const html = join(tmp.dir, 'demo.html');
    const h = await runCli([...demo, '--html', html, 'He lives in the United'], env);
    assert.equal(h.code, 0, h.stderr);
    assert.match(readFileSync(html, 'utf8'), /United/);
  });
});
