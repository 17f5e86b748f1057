// The CLI as a user meets it: output discipline, exit codes, error messages, pipes, colors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, fixtureDir, tempDir } from './helpers/fixtures.js';
import { runCli } from './helpers/cli.js';

const FIX = fixtureDir();
const tmp = tempDir();
const env = { XDG_CACHE_HOME: join(tmp.dir, 'xdg'), HF_HUB_OFFLINE: '1' };
const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(['--model', FIX, ...args], { ...env, ...extra });
after(() => tmp.cleanup());

describe('cli: output', () => {
  before(async () => {
    // first run builds the cache; every later test measures a cached run
    const r = await cli(['Hello']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /building the ONNX graph/);
  });

  it('prints a per-layer table on stdout and nothing on stderr once cached', async () => {
    const r = await cli(['The', 'capital', 'of', 'France', 'is']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /prompt The ·capital ·of ·France \[·is\]/);
    for (const l of [0, 1, 2, 3]) assert.match(r.stdout, new RegExp(`│\\s+${l} │`));
    assert.match(r.stdout, /·nozzle/); // golden top-1 at layer 0
  });

  it('--json prints exactly one JSON document with the version-1 fields', async () => {
    const r = await cli(['--json', '--target', ' Paris', '--target-id', '13', 'The capital of France is']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.version, 1);
    assert.deepEqual(Object.keys(doc.model), ['id', 'n_layer', 'n_embd', 'n_head', 'n_positions', 'vocab_size']);
    assert.equal(doc.prompt, 'The capital of France is');
    assert.deepEqual(doc.tokens.map((t: { id: number }) => t.id), [464, 3139, 286, 4881, 318]);
    assert.equal(doc.position, 4);
    assert.equal(doc.final_norm, true);
    assert.deepEqual(doc.layers.map((l: { layer: number }) => l.layer), [0, 1, 2, 3]);
    const l3 = doc.layers[3];
    assert.equal(l3.top.length, 10);
    for (const k of ['id', 'token', 'prob', 'logprob']) assert.ok(k in l3.top[0]);
    assert.ok(l3.top[0].prob >= l3.top[1].prob);
    assert.ok(Math.abs(l3.kl_to_final) < 1e-5);
    assert.deepEqual(l3.targets.map((t: { id: number; token: string }) => [t.id, t.token]), [[6342, ' Paris'], [13, '.']]);
    assert.ok(Math.abs(l3.targets[0].rank - (32006 + 1)) <= 25, `rank ${l3.targets[0].rank}`); // golden rank is 0-based
  });

  it('--layers, -k, --position and --no-final-norm shape the report', async () => {
    const r = await cli(['--json', '--layers', '0,2-3', '-k', '3', '--position', '-2', '--no-final-norm', 'The capital of France is']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.layers.map((l: { layer: number }) => l.layer), [0, 2, 3]);
    assert.equal(doc.layers[0].top.length, 3);
    assert.equal(doc.position, 3);
    assert.equal(doc.final_norm, false);
  });

  it('a multi-token --target uses the first token and says so on stderr', async () => {
    const r = await cli(['--json', '--target', ' Parisianism', 'Hello']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /--target " Parisianism" is \d tokens .*using the first/);
    assert.equal(JSON.parse(r.stdout).layers[0].targets.length, 1);
  });

  it('shows partial UTF-8 tokens as bytes in tables, exact strings in JSON', async () => {
    const t = await cli(['I love 🍕']);
    assert.match(t.stdout, /·<0xF0 0x9F> <0x8D> \[<0x95>\]/);
    assert.doesNotMatch(t.stdout, /\uFFFD\uFFFD/);
    const j = JSON.parse((await cli(['--json', 'I love 🍕'])).stdout);
    assert.deepEqual(j.tokens.slice(-3).map((x: { text: string }) => x.text), [' \uFFFD', '\uFFFD', '\uFFFD']);
  });

  it('NO_COLOR wins over FORCE_COLOR; FORCE_COLOR alone colors the table', async () => {
    const colored = await cli(['Hello'], { NO_COLOR: '', FORCE_COLOR: '1' });
    assert.match(colored.stdout, /\x1b\[/);
    const plain = await cli(['Hello'], { NO_COLOR: '1', FORCE_COLOR: '1' });
    assert.doesNotMatch(plain.stdout, /\x1b\[/);
  });

  it('--help shows examples and exits 0', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:/);
    assert.match(r.stdout, /--no-final-norm/);
  });

  it('piping into a reader that closes early (| head) exits cleanly', async () => {
    const child = spawn(process.execPath, [BIN, '--model', FIX, '--json', '-k', '2000', 'The capital of France is'], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error/);
  });
});

describe('cli: bad input', () => {
  const usage: Array<[string, string[], RegExp]> = [
    ['empty prompt', [''], /no prompt given/],
    ['whitespace prompt', ['   '], /no prompt given/],
    ['no prompt at all', [], /no prompt given/],
    ['prompt too long', ['word '.repeat(200)], /prompt is 20\d tokens long but the model's context is 128 tokens; shorten it/],
    ['-k 0', ['-k', '0', 'Hi'], /-k must be at least 1/],
    ['-k negative', ['-k', '-3', 'Hi'], /-k must be at least 1/],
    ['-k fractional', ['-k', '1.5', 'Hi'], /-k takes a whole number/],
    ['-k too large', ['-k', '50258', 'Hi'], /-k must be a whole number from 1 to 50257/],
    ['--layers garbage', ['--layers', 'a', 'Hi'], /--layers: "a" is not a layer number/],
    ['--layers out of range', ['--layers', '0,4', 'Hi'], /layer 4 does not exist; this model has layers 0\.\.3/],
    ['--layers backwards', ['--layers', '3-1', 'Hi'], /runs backwards/],
    ['--layers empty item', ['--layers', '1,,2', 'Hi'], /empty item/],
    ['--position out of range', ['--position', '5', 'Hi there'], /--position 5 is outside the prompt, which has 2 tokens/],
    ['--position too negative', ['--position', '-3', 'Hi there'], /--position -3 is outside/],
    ['--position garbage', ['--position', 'last', 'Hi'], /--position takes a whole number/],
    ['--target-id too large', ['--target-id', '50257', 'Hi'], /--target-id 50257 is outside the vocabulary \(0\.\.50256\)/],
    ['--target-id negative', ['--target-id', '-1', 'Hi'], /--target-id -1 is outside the vocabulary/],
    ['unknown flag', ['--frobnicate', 'Hi'], /unknown option '--frobnicate'/],
    ['--attention garbage', ['--attention', 'foo', 'Hi'], /--attention: "foo" is not a layer number/],
    ['--shade target without a target', ['--grid', '--json', '--shade', 'target', 'Hi'], /--shade target shades by the first --target/],
  ];
  for (const [name, args, pattern] of usage) {
    it(`${name}: one clear line on stderr, exit 2`, async () => {
      const r = await cli(args);
      assert.equal(r.code, 2, `${r.stderr}\n${r.stdout}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, pattern);
    });
  }

  const runtime: Array<[string, () => string, RegExp]> = [
    ['model path does not exist', () => join(tmp.dir, 'missing-model'), /model path .*missing-model does not exist/],
    ['folder lacks weights', () => {
      const d = join(tmp.dir, 'no-weights');
      mkdirSync(d, { recursive: true });
      for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(FIX, f), join(d, f));
      return d;
    }, /has no model\.safetensors/],
    ['truncated safetensors', () => {
      const d = join(tmp.dir, 'truncated');
      mkdirSync(d, { recursive: true });
      for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(FIX, f), join(d, f));
      writeFileSync(join(d, 'model.safetensors'), Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
      return d;
    }, /not a valid safetensors file: header claims 200 bytes/],
    ['garbage model.onnx', () => {
      const d = join(tmp.dir, 'garbage-onnx');
      mkdirSync(d, { recursive: true });
      for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(FIX, f), join(d, f));
      writeFileSync(join(d, 'model.onnx'), 'not onnx at all');
      return d;
    }, /cannot load the ONNX model/],
  ];
  for (const [name, make, pattern] of runtime) {
    it(`${name}: clear error, exit 1`, async () => {
      const r = await runCli(['--model', make(), 'Hello'], env);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    });
  }
});

describe('cli: export', () => {
  it('export writes a folder that runs with the same answers, and refuses to clobber', async () => {
    const out = join(tmp.dir, 'exported');
    const e = await runCli(['export', '--model', FIX, '-o', out], env);
    assert.equal(e.code, 0, e.stderr);
    const a = await runCli(['--model', out, '--json', 'The capital of France is'], env);
    const b = await cli(['--json', 'The capital of France is']);
    const strip = (s: string) => ({ ...JSON.parse(s), model: null });
    assert.deepEqual(strip(a.stdout), strip(b.stdout));
    const again = await runCli(['export', '--model', FIX, '-o', out], env);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists and is not empty; .*--force/);
    const forced = await runCli(['export', '--model', FIX, '-o', out, '--force'], env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(existsSync(join(out, 'model.onnx')));
  });

  it('export refuses outputs that would destroy something', async () => {
    const parent = join(tmp.dir, 'guard');
    const ck = join(parent, 'ckpt');
    mkdirSync(ck, { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) copyFileSync(join(FIX, f), join(ck, f));
    writeFileSync(join(parent, 'notes.txt'), 'precious');
    for (const [out, pattern] of [[ck, /is the checkpoint folder or contains it/], [parent, /is the checkpoint folder or contains it/], [join(parent, 'notes.txt'), /is a file/]] as const) {
      const r = await runCli(['export', '--model', ck, '-o', out, '--force'], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    }
    const other = join(tmp.dir, 'not-an-export');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'thesis.tex'), 'precious');
    const r = await runCli(['export', '--model', ck, '-o', other, '--force'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not an earlier export/);
    assert.ok(existsSync(join(ck, 'model.safetensors')) && existsSync(join(parent, 'notes.txt')) && existsSync(join(other, 'thesis.tex')));
  });
});
