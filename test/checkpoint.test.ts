// The checkpoint reader: safetensors validation, both key layouts, F16/BF16, shape checks.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  analyzePrompt, encodeSafetensors, LoadedModel, LogitlensError, openWeights, parseConfig, prepareModelFolder,
  readConfig, readSafetensorsHeader, readTensorF32,
} from '../src/index.js';
import { writeSyntheticCheckpoint } from '../src/model/synthetic.js';
import { toBF16, toF16 } from '../src/model/safetensors.js';
import { fixtureDir, tempDir } from './helpers/fixtures.js';

const FIX = fixtureDir();
const tmp = tempDir();
after(() => tmp.cleanup());

function expectLogitlensError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LogitlensError, `expected LogitlensError, got ${String(e)}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

describe('safetensors reader', () => {
  it('reads the fixture header: 40 tensors, shapes and dtypes', () => {
    const f = readSafetensorsHeader(join(FIX, 'model.safetensors'));
    assert.equal(f.tensors.size, 40);
    assert.deepEqual(f.tensors.get('transformer.wte.weight')!.shape, [50257, 64]);
    assert.equal(f.metadata.format, 'pt');
  });

  it('rejects truncated files at every kind of cut, without crashing', () => {
    const full = readFileSync(join(FIX, 'model.safetensors'));
    const hlen = Number(full.readBigUInt64LE(0));
    for (const cut of [0, 3, 7, 8, 20, 8 + hlen - 1, 8 + hlen + 100, full.length - 1]) {
      const p = join(tmp.dir, `cut-${cut}.safetensors`);
      writeFileSync(p, full.subarray(0, cut));
      expectLogitlensError(() => readSafetensorsHeader(p), /not a valid safetensors file/);
    }
  });

  it('rejects random garbage and hostile headers before allocating', () => {
    const cases: Array<[string, Buffer]> = [];
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
    cases.push(['garbage', garbage]);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1n << 62n);
    cases.push(['huge header length', huge]);
    const header = (obj: unknown, dataBytes = 0) => {
      const json = Buffer.from(JSON.stringify(obj));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      return Buffer.concat([len, json, Buffer.alloc(dataBytes)]);
    };
    cases.push(['not an object', header([1, 2, 3])]);
    cases.push(['offsets past end', header({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8)]);
    cases.push(['shape vs bytes', header({ a: { dtype: 'F32', shape: [1000000, 1000000], data_offsets: [0, 16] } }, 16)]);
    cases.push(['bad dtype', header({ a: { dtype: 'Q4', shape: [4], data_offsets: [0, 4] } }, 4)]);
    cases.push(['negative shape', header({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4)]);
    cases.push(['overlap', header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12)]);
    for (const [name, buf] of cases) {
      const p = join(tmp.dir, `${name.replace(/\W/g, '_')}.safetensors`);
      writeFileSync(p, buf);
      expectLogitlensError(() => readSafetensorsHeader(p), /not a valid safetensors file/);
    }
  });

  it('widens F16 and BF16 exactly', () => {
    const vals = new Float32Array([0, 1, -2, 0.5, 65504, 1 / 1024, -0.333251953125, 6e-8]);
    const p = join(tmp.dir, 'dtypes.safetensors');
    writeFileSync(p, encodeSafetensors([
      { name: 'h', dtype: 'F16', shape: [vals.length], data: vals },
      { name: 'b', dtype: 'BF16', shape: [vals.length], data: vals },
    ]));
    const f = readSafetensorsHeader(p);
    const h = readTensorF32(f, f.tensors.get('h')!);
    const b = readTensorF32(f, f.tensors.get('b')!);
    const f16 = [0, 1, -2, 0.5, 65504, 1 / 1024, -0.333251953125, 5.960464477539063e-8];
    assert.deepEqual([...h], f16);
    assert.deepEqual([...b.slice(0, 4)], [0, 1, -2, 0.5]);
    assert.ok(Math.abs(b[6] + 0.333251953125) < 2e-3);
    assert.equal(toF16(new Float32Array([1])).readUInt16LE(0), 0x3c00);
    assert.equal(toBF16(new Float32Array([1])).readUInt16LE(0), 0x3f80);
  });
});

describe('checkpoint folders', () => {
  const small = { n_layer: 2, n_embd: 32, n_head: 4, n_positions: 64 };

  it('reads save_pretrained and official key layouts identically, and F16/BF16 closely', async () => {
    const results: Record<string, number[]> = {};
    for (const [layout, dtype] of [['save_pretrained', 'F32'], ['official', 'F32'], ['save_pretrained', 'F16'], ['official', 'BF16']] as const) {
      const dir = join(tmp.dir, `ck-${layout}-${dtype}`);
      writeSyntheticCheckpoint(dir, { config: small, layout, dtype, seed: 7, tokenizerFrom: FIX });
      const prepared = prepareModelFolder(dir, { cacheDir: join(tmp.dir, 'cache') });
      const model = await LoadedModel.open(prepared.dir);
      const r = await analyzePrompt(model, 'The capital of France is', { k: 5 });
      await model.close();
      results[`${layout}-${dtype}`] = r.layers.flatMap((l) => l.top.map((t) => t.logprob));
    }
    assert.deepEqual(results['official-F32'], results['save_pretrained-F32']);
    const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    assert.ok(maxDiff(results['save_pretrained-F16'], results['save_pretrained-F32']) < 0.05);
    assert.ok(maxDiff(results['official-BF16'], results['save_pretrained-F32']) < 0.3);
  });

  it('adds an lm_head bias when the checkpoint has one', async () => {
    const dir = join(tmp.dir, 'ck-bias');
    const bias = new Float32Array(50257);
    bias[314] = 100; // " I" wins everywhere
    writeSyntheticCheckpoint(dir, { config: small, seed: 3, tokenizerFrom: FIX, extra: [{ name: 'lm_head.bias', shape: [50257], data: bias }] });
    const model = await LoadedModel.open(prepareModelFolder(dir, { cacheDir: join(tmp.dir, 'cache') }).dir);
    const r = await analyzePrompt(model, 'Hello there', { k: 1 });
    await model.close();
    for (const l of r.layers) assert.equal(l.top[0].id, 314);
    assert.ok(r.self_check_max_abs_diff < 1e-3);
  });

  it('a changed checkpoint is rebuilt, an unchanged one reused', async () => {
    const dir = join(tmp.dir, 'ck-change');
    const cache = join(tmp.dir, 'cache-change');
    writeSyntheticCheckpoint(dir, { config: small, seed: 11, tokenizerFrom: FIX });
    const first = prepareModelFolder(dir, { cacheDir: cache });
    assert.ok(first.built);
    assert.equal(prepareModelFolder(dir, { cacheDir: cache }).built, false);
    const run = async (d: string) => {
      const m = await LoadedModel.open(d);
      try {
        return (await analyzePrompt(m, 'Hello', { k: 1 })).layers.map((l) => l.top[0].logprob);
      } finally {
        await m.close();
      }
    };
    const before = await run(first.dir);
    await new Promise((r) => setTimeout(r, 20)); // a distinct modification time
    writeSyntheticCheckpoint(dir, { config: small, seed: 12, tokenizerFrom: FIX });
    const second = prepareModelFolder(dir, { cacheDir: cache });
    assert.ok(second.built);
    assert.notEqual(second.dir, first.dir);
    assert.ok(!existsSync(first.dir), 'the superseded build is removed');
    assert.notDeepEqual(await run(second.dir), before);
  });

  it('names the offending tensor when a shape disagrees with config.json', () => {
    const dir = join(tmp.dir, 'ck-shape');
    writeSyntheticCheckpoint(dir, { config: small, seed: 1, tokenizerFrom: FIX });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    cfg.n_embd = 48; // weights are 32 wide
    cfg.n_head = 4;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    expectLogitlensError(() => openWeights(dir, readConfig(dir)), /tensor transformer\.wte\.weight has shape \[50257, 32\] but config\.json implies \[50257, 48\]/);
  });

  it('says clearly when a checkpoint is another architecture', () => {
    expectLogitlensError(() => parseConfig({ model_type: 'llama', hidden_size: 4096 }), /"llama" model; logitlens supports GPT-2/);
    expectLogitlensError(() => parseConfig({ n_layer: 2 }), /no valid "n_embd"/);
  });

  it('reports missing files and folders precisely', () => {
    const dir = join(tmp.dir, 'ck-missing');
    mkdirSync(dir, { recursive: true });
    expectLogitlensError(() => prepareModelFolder(join(tmp.dir, 'nope')), /does not exist/);
    expectLogitlensError(() => prepareModelFolder(dir), /no config\.json/);
    copyFileSync(join(FIX, 'config.json'), join(dir, 'config.json'));
    expectLogitlensError(() => prepareModelFolder(dir), /no tokenizer/);
    copyFileSync(join(FIX, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    expectLogitlensError(() => prepareModelFolder(dir), /no model\.safetensors/);
    writeFileSync(join(dir, 'model.safetensors'), Buffer.from('garbage, not a model'));
    expectLogitlensError(() => prepareModelFolder(dir, { cacheDir: join(tmp.dir, 'cache') }), /not a valid safetensors file/);
  });
});
