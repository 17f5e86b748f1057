// Models by name through the CLI, against the Hub stand-in on 127.0.0.1.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeHub, FAKE_COMMIT, fixtureFiles, GATED_TOKEN } from './helpers/fake-hub.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

describe('cli: models from the Hub', () => {
  const tmp = tempDir();
  let hub: FakeHub;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    hub = await FakeHub.start();
    hub.addRepo('gpt2', fixtureFiles());
    env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: join(tmp.dir, 'hf'), XDG_CACHE_HOME: join(tmp.dir, 'xdg'), HF_TOKEN: '', HF_HUB_OFFLINE: '' };
  });
  after(async () => {
    await hub.stop();
    tmp.cleanup();
  });

  it('downloads on first use, shares the HF cache layout, and reports the repo id', async () => {
    const r = await runCli(['--model', 'openai-community/gpt2', '--json', 'The capital of France is'], env);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.model.id, 'openai-community/gpt2');
    assert.equal(doc.layers[0].top[0].id, 46031); // golden layer-0 top-1
    const repo = join(tmp.dir, 'hf', 'models--openai-community--gpt2');
    assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8').trim(), FAKE_COMMIT);
    assert.ok(existsSync(join(repo, 'snapshots', FAKE_COMMIT, 'model.safetensors')));
    assert.doesNotMatch(r.stderr, /\r/); // no progress bar when stderr is not a TTY
  });

  it('a built model runs with no network at all', async () => {
    const before = hub.count();
    const r = await runCli(['--model', 'openai-community/gpt2', '--json', 'Hello'], { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hub.count(), before);
  });

  it('without --model the default is gpt2', async () => {
    const r = await runCli(['--json', 'Hello'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).model.id, 'gpt2');
  });

  it('models lists both caches; rm keeps the HF cache unless --hf-cache', async () => {
    const list = JSON.parse((await runCli(['models', '--json'], env)).stdout) as Array<{ id: string; onnx_built: boolean; hf_bytes: number; revision: string }>;
    const row = list.find((m) => m.id === 'openai-community/gpt2')!;
    assert.ok(row.onnx_built && row.hf_bytes > 13_000_000 && row.revision === 'main', JSON.stringify(row));

    const rm = await runCli(['rm', 'openai-community/gpt2'], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stderr, /removed 1 ONNX build/);
    const before = hub.count();
    const offline = await runCli(['--model', 'openai-community/gpt2', '--json', 'Hello'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(offline.code, 0, offline.stderr); // rebuilt from the HF cache
    assert.match(offline.stderr, /building the ONNX graph/);
    assert.equal(hub.count(), before);

    assert.equal((await runCli(['rm', '--hf-cache', 'openai-community/gpt2'], env)).code, 0);
    assert.ok(!existsSync(join(tmp.dir, 'hf', 'models--openai-community--gpt2')));
    const gone = await runCli(['--model', 'openai-community/gpt2', 'Hello'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /HF_HUB_OFFLINE/);
  });

  it('pull downloads and builds without analyzing; stdout gets the built folder', async () => {
    const r = await runCli(['pull', 'openai-community/gpt2'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(r.stdout.trim(), 'model.onnx')));
    assert.match(r.stderr, /is ready/);
  });

  it('a gated repo needs HF_TOKEN, and the token never shows', async () => {
    const without = await runCli(['--model', 'org/gated', 'Hello'], env);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /gated or private.*HF_TOKEN/);
    const wrong = await runCli(['--model', 'org/gated', 'Hello'], { ...env, HF_TOKEN: 'hf_wrong_token_1234567890' });
    assert.equal(wrong.code, 1);
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /hf_wrong_token_1234567890/);
    const ok = await runCli(['--model', 'org/gated', '--json', 'Hello'], { ...env, HF_TOKEN: GATED_TOKEN });
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr + ok.stdout, new RegExp(GATED_TOKEN));
  });

  it('a malformed token is refused without being shown', async () => {
    const r = await runCli(['--model', 'org/no-tokenizer-json', 'Hello'], { ...env, HF_TOKEN: 'hf_SECRETTOKEN123\nx' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /token from HF_TOKEN contains spaces, line breaks/);
    assert.doesNotMatch(r.stderr + r.stdout, /SECRETTOKEN/);
  });

  it('a repo that does not exist and a non-GPT-2 repo fail clearly', async () => {
    const nf = await runCli(['--model', 'org/does-not-exist', 'Hello'], env);
    assert.equal(nf.code, 1);
    assert.match(nf.stderr, /not found/);
    const bert = await runCli(['--model', 'org/bert', 'Hello'], env);
    assert.equal(bert.code, 1);
    assert.match(bert.stderr, /bert/);
  });
});
