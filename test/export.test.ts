// Exported ONNX folders: same answers as the direct path; broken or foreign graphs give clear errors.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import {
  analyzePrompt, buildGpt2Graph, buildLensHead, buildOnnxFolder, LoadedModel, LogitlensError, openWeights, prepareModelFolder, readConfig,
} from '../src/index.js';
import { lensWeights } from '../src/model/store.js';
import { GraphBuilder } from '../src/model/onnx/graph.js';
import { DType } from '../src/model/onnx/proto.js';
import { writeSyntheticCheckpoint } from '../src/model/synthetic.js';
import { fixtureDir, ROOT, tempDir } from './helpers/fixtures.js';

const FIX = fixtureDir();
const tmp = tempDir();
after(() => tmp.cleanup());

async function report(dir: string, prompt: string) {
  const model = await LoadedModel.open(dir);
  try {
    return await analyzePrompt(model, prompt, { k: 10, targets: [6342, 13] }, 'x');
  } finally {
    await model.close();
  }
}

async function expectOpenError(dir: string, pattern: RegExp): Promise<void> {
  await assert.rejects(LoadedModel.open(dir), (e: unknown) => {
    assert.ok(e instanceof LogitlensError, String(e));
    assert.match((e as Error).message, pattern);
    return true;
  });
}

function copyTokenizerAndConfig(to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(FIX, f), join(to, f));
}

describe('export', () => {
  it('an exported folder gives the same answers as the checkpoint', async () => {
    const out = join(tmp.dir, 'export');
    buildOnnxFolder(FIX, out);
    assert.deepEqual(readdirSync(out).sort(), [
      'config.json', 'logitlens.json', 'model.onnx', 'model.onnx.data', 'special_tokens_map.json',
      'tokenizer.json', 'tokenizer_config.json',
    ]);
    const direct = prepareModelFolder(FIX, { cacheDir: join(tmp.dir, 'cache') });
    for (const prompt of ['The capital of France is', 'I love 🍕 and 北京烤鸭!']) {
      assert.deepEqual(await report(out, prompt), await report(direct.dir, prompt));
    }
  });

  it('a foreign model.onnx without a lens head gets one from lens.onnx or model.safetensors', async () => {
    const out = join(tmp.dir, 'foreign');
    mkdirSync(out, { recursive: true });
    const w = openWeights(FIX, readConfig(FIX));
    buildGpt2Graph(w, { lensHead: false }).save(out, 'model.onnx', 'model.onnx.data');
    copyTokenizerAndConfig(out);
    const direct = prepareModelFolder(FIX, { cacheDir: join(tmp.dir, 'cache') });
    const want = await report(direct.dir, 'Hello world');
    await expectOpenError(out, /has no lens head, and .* has neither lens\.onnx nor model\.safetensors/);
    copyFileSync(join(FIX, 'model.safetensors'), join(out, 'model.safetensors'));
    assert.deepEqual(await report(out, 'Hello world'), want);
    rmSync(join(out, 'model.safetensors'));
    writeFileSync(join(out, 'lens.onnx'), buildLensHead(w.config, lensWeights(w)).toBytes());
    assert.deepEqual(await report(out, 'Hello world'), want);
  });

  it('a garbage .onnx file is a clear error', async () => {
    const dir = join(tmp.dir, 'garbage-onnx');
    copyTokenizerAndConfig(dir);
    writeFileSync(join(dir, 'model.onnx'), Buffer.from('this is not a protobuf \u0000\u0001\u0002'));
    await expectOpenError(dir, /cannot load the ONNX model .*model\.onnx/);
  });

  it('an ONNX graph without the hidden-state outputs says what it lacks', async () => {
    const dir = join(tmp.dir, 'no-hidden');
    copyTokenizerAndConfig(dir);
    const g = new GraphBuilder('foreign', 20);
    const ids = g.input('input_ids', DType.INT64, ['batch', 'seq']);
    g.input('attention_mask', DType.INT64, ['batch', 'seq']);
    g.output(g.op('Cast', [ids], { to: DType.FLOAT }), 'logits', DType.FLOAT, ['batch', 'seq']);
    writeFileSync(join(dir, 'model.onnx'), g.toBytes());
    await expectOpenError(dir, /lacks outputs hidden_states\.0, hidden_states\.1, hidden_states\.2, hidden_states\.3;/);
  });

  it('a build killed half-way leaves no cache entry, and the next run builds cleanly', async () => {
    const cache = join(tmp.dir, 'cache-kill');
    const ck = join(tmp.dir, 'big-ck');
    writeSyntheticCheckpoint(ck, { config: { n_layer: 4, n_embd: 256, n_head: 4 }, tokenizerFrom: FIX });
    const script = `import { prepareModelFolder } from ${JSON.stringify(join(ROOT, 'dist/src/index.js'))};
      prepareModelFolder(${JSON.stringify(ck)}, { cacheDir: ${JSON.stringify(cache)} });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const models = join(cache, 'models');
    const started = Date.now();
    while (!(existsSync(models) && readdirSync(models).some((f) => f.includes('.tmp-'))) && Date.now() - started < 20000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(readdirSync(models).every((f) => f.includes('.tmp-')), 'only temp folders may remain after a kill');
    const prepared = prepareModelFolder(ck, { cacheDir: cache });
    assert.ok(prepared.built);
    assert.deepEqual(readdirSync(models).filter((f) => f.includes('.tmp-')), [], 'stale temp folders are swept');
    const model = await LoadedModel.open(prepared.dir);
    await model.close();
  });
});
