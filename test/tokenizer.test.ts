// Tokens: both tokenizer file layouts agree with transformers, and terminals see what a token really is.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { displayToken, loadOrt, loadTokenizer } from '../src/index.js';
import { fixtureDir, tempDir } from './helpers/fixtures.js';

const FIX = fixtureDir();
const tmp = tempDir();
after(() => tmp.cleanup());

interface GoldenPrompt { text: string; input_ids: number[]; tokens: string[]; token_bytes_hex: string[]; decoded: string[] }
const golden = JSON.parse(readFileSync(join(FIX, 'golden.json'), 'utf8')) as { prompts: GoldenPrompt[] };

describe('tokenizer', () => {
  it('vocab.json + merges.txt gives the same ids, bytes and strings as tokenizer.json and transformers', () => {
    const bpeOnly = join(tmp.dir, 'bpe');
    mkdirSync(bpeOnly, { recursive: true });
    for (const f of ['vocab.json', 'merges.txt']) copyFileSync(join(FIX, f), join(bpeOnly, f));
    const a = loadTokenizer(FIX);
    const b = loadTokenizer(bpeOnly);
    assert.equal(a.vocabSize, 50257);
    assert.equal(b.vocabSize, 50257);
    for (const p of golden.prompts) {
      assert.deepEqual(a.encode(p.text), p.input_ids, p.text);
      assert.deepEqual(b.encode(p.text), p.input_ids, p.text);
      p.input_ids.forEach((id, i) => {
        for (const t of [a, b]) {
          assert.equal(Buffer.from(t.token(id).bytes).toString('hex'), p.token_bytes_hex[i]);
          assert.equal(t.token(id).text, p.decoded[i]);
        }
      });
    }
    assert.equal(a.token(50256).text, '<|endoftext|>');
    assert.equal(b.encode('<|endoftext|>').length, 1);
  });

  it('makes whitespace visible and shows split characters as bytes', () => {
    const t = loadTokenizer(FIX);
    const show = (s: string) => t.encode(s).map((id) => displayToken(t.token(id)));
    assert.deepEqual(show(' capital'), ['·capital']);
    assert.deepEqual(show('a\n\tb'), ['a', '↵', '⇥', 'b']);
    assert.deepEqual(show(' 🍕'), ['·<0xF0 0x9F>', '<0x8D>', '<0x95>']);
    assert.ok(!show('北京烤鸭').some((s) => s.includes('\uFFFD')));
  });

  it('ONNX Runtime is loaded with telemetry disabled', async () => {
    delete process.env.ORT_DISABLE_TELEMETRY;
    await loadOrt();
    assert.equal(process.env.ORT_DISABLE_TELEMETRY, '1');
  });
});
