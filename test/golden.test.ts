// Every number the lens reports, checked against HuggingFace transformers' float64 reference
// (../shared/fixtures/gpt2-tiny/golden.json; see its README for the definitions).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyzePrompt, lensCells, LoadedModel, prepareModelFolder } from '../src/index.js';
import { fixtureDir, ROOT, tempDir } from './helpers/fixtures.js';
import { loadGolden, type GoldenDist } from './helpers/golden.js';

const FIX = fixtureDir();
const golden = loadGolden(FIX);
const TOL = 1e-4;
const SWAP_GAP = 1e-5;

/** Top-k ids must match in order, except where the golden logits are too close for float32 to order. */
function assertTopIds(ours: number[], g: GoldenDist, where: string): void {
  for (let j = 0; j < g.top_ids.length; j++) {
    if (ours[j] === g.top_ids[j]) continue;
    const idx = g.top_ids.indexOf(ours[j]);
    const close = idx >= 0 ? Math.abs(g.top_logits[idx] - g.top_logits[j]) < SWAP_GAP : j === g.top_ids.length - 1 && g.gap_to_next < SWAP_GAP;
    assert.ok(close, `${where}: top[${j}] is ${ours[j]}, golden ${g.top_ids[j]} (not a near-tie)`);
  }
}

function assertRank(ours1: number, golden0: number, where: string): void {
  const ours0 = ours1 - 1;
  if (golden0 <= 100) assert.equal(ours0, golden0, `${where}: rank`);
  else assert.ok(Math.abs(ours0 - golden0) <= 25, `${where}: rank ${ours0} vs golden ${golden0}`);
}

it('the committed fixture copy matches ../shared when it is there', (t) => {
  const shared = join(ROOT, '..', 'shared', 'fixtures', 'gpt2-tiny');
  if (!existsSync(shared)) return t.skip('no ../shared on this machine: the committed copy is the reference');
  for (const f of readdirSync(shared)) {
    const digest = (d: string) => createHash('sha256').update(readFileSync(join(d, f))).digest('hex');
    assert.equal(digest(join(ROOT, 'test', 'fixtures', 'gpt2-tiny')), digest(shared), `test/fixtures/gpt2-tiny/${f} differs from ../shared`);
  }
});

describe('golden: gpt2-tiny against transformers (float64)', () => {
  let model: LoadedModel;
  const cache = tempDir();
  before(async () => {
    const prepared = prepareModelFolder(FIX, { cacheDir: cache.dir });
    model = await LoadedModel.open(prepared.dir);
  });
  after(async () => {
    await model.close();
    cache.cleanup();
  });

  it('tokenizes every prompt to the golden ids', () => {
    for (const p of golden.prompts) assert.deepEqual(model.tokenizer.encode(p.text), p.input_ids, p.text);
  });

  for (const norm of [true, false]) {
    it(`top-k, log-probs, entropy, KL and targets at every layer, final norm ${norm ? 'on' : 'off'}`, async () => {
      let checked = 0;
      for (const [pi, p] of golden.prompts.entries()) {
        const r = await analyzePrompt(model, p.text, { k: golden.top_k, finalNorm: norm, targets: golden.targets });
        assert.equal(r.position, p.final_position);
        assert.equal(r.layers.length, p.lens.length);
        for (const L of r.layers) {
          const gl = p.lens[L.layer];
          const g = norm ? gl.with_norm : gl.without_norm;
          const where = `prompt ${pi} layer ${L.layer} norm=${norm}`;
          assertTopIds(L.top.map((t) => t.id), g, where);
          for (let j = 0; j < g.top_ids.length; j++) {
            const gi = g.top_ids.indexOf(L.top[j].id);
            const want = gi >= 0 ? g.top_logprobs[gi] : g.top_logprobs[j];
            assert.ok(Math.abs(L.top[j].logprob - want) <= TOL, `${where}: logprob[${j}] ${L.top[j].logprob} vs ${want}`);
          }
          assert.ok(Math.abs(L.entropy - g.entropy) <= TOL, `${where}: entropy ${L.entropy} vs ${g.entropy}`);
          assert.ok(Math.abs(L.kl_to_final - g.kl_to_final) <= TOL, `${where}: kl ${L.kl_to_final} vs ${g.kl_to_final}`);
          const gt = norm ? gl.targets : gl.targets_without_norm;
          L.targets.forEach((t, j) => {
            assert.equal(t.id, gt[j].id);
            assert.ok(Math.abs(t.logprob - gt[j].logprob) <= TOL, `${where}: target ${t.id} logprob ${t.logprob} vs ${gt[j].logprob}`);
            assertRank(t.rank, gt[j].rank, `${where} target ${t.id}`);
          });
          checked++;
        }
      }
      assert.equal(checked, golden.prompts.reduce((a, p) => a + p.lens.length, 0));
    });
  }

  it('the last layer with final norm reproduces the model logits (KL 0, self-check)', async () => {
    for (const p of golden.prompts) {
      const r = await analyzePrompt(model, p.text, {});
      assert.ok(r.self_check_max_abs_diff < 1e-4, `self-check ${r.self_check_max_abs_diff}`);
      assert.ok(Math.abs(r.layers.at(-1)!.kl_to_final) < 1e-5);
    }
  });

  it('hidden states at the final position match, layer by layer', async () => {
    const E = model.config.n_embd;
    for (const p of golden.prompts) {
      const fwd = await model.forward([p.input_ids]);
      for (const gl of p.lens) {
        const ours = fwd.hidden[gl.layer].subarray(p.final_position * E, (p.final_position + 1) * E);
        gl.hidden_final_f32.forEach((v, i) => {
          assert.ok(Math.abs(ours[i] - v) <= 1e-5 * Math.max(1, Math.abs(v)), `layer ${gl.layer} dim ${i}: ${ours[i]} vs ${v}`);
        });
      }
    }
  });

  it('attention probabilities of the final position match within 1e-5', async () => {
    const H = model.config.n_head;
    for (const p of golden.prompts) {
      const S = p.n_tokens;
      const fwd = await model.forward([p.input_ids], true);
      assert.equal(fwd.attention.length, model.config.n_layer);
      p.attention_final_pos.forEach((layer, l) => layer.forEach((row, h) => row.forEach((v, key) => {
        const ours = fwd.attention[l][((0 * H + h) * S + (S - 1)) * S + key];
        assert.ok(Math.abs(ours - v) <= 1e-5, `layer ${l} head ${h} key ${key}: ${ours} vs ${v}`);
      })));
    }
  });

  it('per-position top-1 of the with-norm lens matches at every layer and position', async () => {
    for (const p of golden.prompts) {
      const fwd = await model.forward([p.input_ids]);
      const cells = p.lens.flatMap((gl) => p.input_ids.map((_, position) => ({ layer: gl.layer, position })));
      const { stats } = await lensCells(model, fwd, 0, p.n_tokens, cells, { finalNorm: true, k: 1, targets: [] });
      for (const s of stats) {
        const gl = p.lens[s.cell.layer];
        const t = s.cell.position;
        if (gl.per_position_top1_gap[t] >= SWAP_GAP) assert.equal(s.top[0].id, gl.per_position_top1_ids[t], `layer ${s.cell.layer} pos ${t}`);
        assert.ok(Math.abs(s.top[0].prob - gl.per_position_top1_probs[t]) <= TOL, `layer ${s.cell.layer} pos ${t} prob`);
        assert.ok(Math.abs(s.gap - gl.per_position_top1_gap[t]) <= TOL, `layer ${s.cell.layer} pos ${t} gap`);
      }
    }
  });

  it('padding does not change any number (batched rows equal one-by-one rows)', async () => {
    const rows = golden.prompts.map((p) => p.input_ids);
    const batched = await model.forward(rows, true);
    const E = model.config.n_embd;
    for (const [b, ids] of rows.entries()) {
      const alone = await model.forward([ids], true);
      for (let l = 0; l <= model.config.n_layer; l++) {
        for (let t = 0; t < ids.length; t++) {
          for (let i = 0; i < E; i++) {
            const x = batched.hidden[l][(b * batched.seq + t) * E + i];
            const y = alone.hidden[l][t * E + i];
            assert.ok(Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(y)), `row ${b} layer ${l} pos ${t}`);
          }
        }
      }
      const V = model.config.vocab_size;
      for (let v = 0; v < V; v += 97) assert.ok(Math.abs(batched.logits[b * V + v] - alone.logits[v]) <= 1e-4);
    }
  });
});
