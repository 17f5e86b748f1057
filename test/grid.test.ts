// The layer × position grid and attention: numbers against the float64 golden reference, the
// terminal picture against reviewed snapshots, and the CLI contract (JSON fields, usage errors).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  analyzePictures, LoadedModel, prepareModelFolder, renderAttention, renderGrid, renderTargetTrajectories,
  type PictureReport,
} from '../src/index.js';
import { stripAnsi } from '../src/render/grid.js';
import { stringWidth } from '../src/render/table.js';
import { runCli } from './helpers/cli.js';
import { fixtureDir, ROOT, tempDir } from './helpers/fixtures.js';
import { loadGolden } from './helpers/golden.js';

const FIX = fixtureDir();
const golden = loadGolden(FIX);
const TOL = 1e-4;
const SWAP_GAP = 1e-5;
const SNAPSHOTS = join(ROOT, 'test', 'snapshots');

/** Compare with a reviewed snapshot; UPDATE_SNAPSHOTS=1 rewrites it (then review the diff). */
function matchSnapshot(name: string, actual: string): void {
  const file = join(SNAPSHOTS, name);
  if (process.env.UPDATE_SNAPSHOTS === '1') {
    mkdirSync(SNAPSHOTS, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `snapshot ${file} is missing; run the tests with UPDATE_SNAPSHOTS=1 and review it`);
  assert.equal(actual, readFileSync(file, 'utf8'), `terminal output differs from ${file} (UPDATE_SNAPSHOTS=1 rewrites it after review)`);
}

describe('grid: every layer at every position', () => {
  let model: LoadedModel;
  const cache = tempDir();
  const env = { XDG_CACHE_HOME: cache.dir };
  before(async () => {
    model = await LoadedModel.open(prepareModelFolder(FIX, { cacheDir: join(cache.dir, 'logitlens') }).dir);
  });
  after(async () => {
    await model.close();
    cache.cleanup();
  });

  it('top-1 ids and probabilities match per_position_top1_* for every prompt, layer and position', async () => {
    let checked = 0;
    for (const p of golden.prompts) {
      const r = await analyzePictures(model, p.text, { grid: true });
      assert.equal(r.positions!.length, p.n_tokens);
      for (const col of r.positions!) {
        assert.equal(col.token, model.tokenizer.token(p.input_ids[col.position]).text);
        assert.equal(col.layers.length, p.lens.length);
        for (const cell of col.layers) {
          assert.equal(cell.top.length, 1, 'grid mode defaults to k = 1');
          const gl = p.lens[cell.layer];
          const t = col.position;
          const where = `"${p.text.slice(0, 20)}" layer ${cell.layer} position ${t}`;
          if (gl.per_position_top1_gap[t] >= SWAP_GAP) assert.equal(cell.top[0].id, gl.per_position_top1_ids[t], where);
          assert.ok(Math.abs(cell.top[0].prob - gl.per_position_top1_probs[t]) <= TOL, `${where}: p ${cell.top[0].prob} vs ${gl.per_position_top1_probs[t]}`);
          checked++;
        }
      }
      // the analyzed position's column is the version-1 report's layers
      const last = r.positions![r.position].layers;
      assert.deepEqual(last.map((c) => c.top), r.layers.map((c) => c.top));
    }
    assert.equal(checked, golden.prompts.reduce((a, p) => a + p.n_tokens * p.lens.length, 0));
  });

  it('--json --attention all gives attention_final_pos, and --grid --json the positions', async () => {
    for (const pi of [0, 2, 3]) {
      const p = golden.prompts[pi];
      const res = await runCli(['--model', FIX, '--json', '--attention', 'all', '--grid', '-k', '3', p.text], env);
      assert.equal(res.code, 0, res.stderr);
      const r = JSON.parse(res.stdout) as PictureReport;
      assert.equal(r.version, 1);
      assert.deepEqual(r.attention!.map((a) => a.layer), [1, 2, 3]);
      r.attention!.forEach((a) => a.heads.forEach((row, h) => {
        const want = p.attention_final_pos[a.layer - 1][h];
        assert.equal(row.length, p.n_tokens);
        row.forEach((v, key) => assert.ok(Math.abs(v - want[key]) <= 1e-5, `prompt ${pi} layer ${a.layer} head ${h} key ${key}: ${v} vs ${want[key]}`));
      }));
      assert.equal(r.positions!.length, p.n_tokens);
      for (const col of r.positions!) {
        assert.deepEqual(Object.keys(col.layers[0]).sort(), ['entropy', 'kl_to_final', 'layer', 'targets', 'top']);
        assert.equal(col.layers[0].top.length, 3);
        col.layers.forEach((c) => assert.ok(Math.abs(c.top[0].prob - p.lens[c.layer].per_position_top1_probs[col.position]) <= TOL));
      }
    }
  });

  it('attention of an earlier position is causal: nothing on later tokens, rows sum to 1', async () => {
    const r = await analyzePictures(model, golden.prompts[2].text, { position: 10, attention: [1, 3] });
    assert.equal(r.positions, undefined);
    for (const a of r.attention!) {
      for (const row of a.heads) {
        assert.ok(row.slice(11).every((v) => v === 0));
        assert.ok(Math.abs(row.reduce((x, y) => x + y, 0) - 1) < 1e-5);
      }
    }
  });

  for (const width of [80, 200]) {
    it(`terminal grid, attention and target sparklines at ${width} columns match the snapshot`, async () => {
      // a token repeated back to back makes an embedding-row hit (*) even in a random model
      const text = `${golden.prompts[2].text.slice(0, 120)} boat boat boat & <b>"quoted"</b>\n`;
      const r = await analyzePictures(model, text, { grid: true, attention: [3], targets: [262, 13] }, 'gpt2-tiny');
      const style = { color: false, width };
      const info = (id: number) => model.tokenizer.token(id);
      const out = [
        renderGrid(r, info, style, { shade: 'prob' }),
        renderAttention(r, info, style),
        renderTargetTrajectories(r, info, style),
        renderGrid({ ...r, positions: r.positions!.slice(0, 12) }, info, style, { shade: 'entropy', explicitPositions: true }),
      ].join('\n');
      for (const line of out.split('\n')) assert.ok(stringWidth(line) <= width, `line wider than ${width}: ${line}`);
      assert.ok(!/\u001b/.test(out), 'no escape codes without color');
      matchSnapshot(`grid-${width}.txt`, out);
      // in color the same layout, with 24-bit backgrounds instead of shade characters
      const colored = renderGrid(r, info, { color: true, width }, { shade: 'prob' });
      assert.match(colored, /\u001b\[48;2;\d+;\d+;\d+m/);
      const rows = (text: string) => text.split('\n').filter((l) => l.includes('│')).map((l) => l.trimEnd());
      const plain = rows(stripAnsi(colored));
      for (const line of stripAnsi(colored).split('\n')) assert.ok(stringWidth(line) <= width, `colored line wider than ${width}: ${line}`);
      assert.deepEqual(plain.map((l) => stringWidth(l)), rows(renderGrid(r, info, style, { shade: 'prob' })).map((l) => stringWidth(l)));
      assert.equal(plain.length, model.config.n_layer + 2);
    });
  }

  it('usage errors say what to do and exit 2; nothing half-written is left behind', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--grid', '--positions', '3-99'], /--positions 3-99 does not fit the prompt, which has positions 0\.\.4/],
      [['--grid', '--positions', 'x'], /not a range; use e\.g\. --positions 10-30/],
      [['--grid', '--shade', 'target'], /add --target/],
      [['--grid', '--shade', 'bogus'], /Allowed choices are prob, entropy, kl, target/],
      [['--attention', '0'], /attention lives in blocks 1\.\.3/],
      [['--attention', '7'], /layer 7 does not exist/],
    ];
    for (const [args, pattern] of cases) {
      const res = await runCli(['--model', FIX, ...args, 'The capital of France is'], env);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, pattern);
      assert.equal(res.stdout, '');
    }
    const dir = join(cache.dir, 'out');
    mkdirSync(dir);
    const bad = await runCli(['--model', FIX, '--svg', join(dir, 'missing', 'g.svg'), 'Hi'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot write .*g\.svg: .*check that the folder exists/);
    const ok = await runCli(['--model', FIX, '--svg', join(dir, 'g.svg'), '--html', join(dir, 'r.html'), 'Hi'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ['g.svg', 'r.html']);
  });

  it('the normal table gains target sparklines', async () => {
    const res = await runCli(['--model', FIX, '--target', ' Paris', 'The capital of France is'], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /·Paris +p +[▁▂▃▄▅▆▇█]{4} /);
    assert.match(res.stdout, /rank [▁▂▃▄▅▆▇█]{4} +#\d+ → #\d+/);
  });
});
