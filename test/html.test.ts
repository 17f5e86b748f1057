// The HTML report and the SVG, opened in headless Chromium: the page's script runs without a
// console message, the cells carry the right tokens (tricky text escaped), and it draws something.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { displayToken, LoadedModel, prepareModelFolder } from '../src/index.js';
import { browserStatus, chromium, readPng } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { fixtureDir, tempDir } from './helpers/fixtures.js';
import { loadGolden } from './helpers/golden.js';

const FIX = fixtureDir();
const golden = loadGolden(FIX);
const SWAP_GAP = 1e-5;
// golden prompt 3 has emoji and CJK (tokens that are partial UTF-8); markup, quotes and a newline follow
const BASE = golden.prompts[3];
const PROMPT = `${BASE.text} <script>alert("x")</script> & 'q' </b>\n<!-- end`;

function unescapeHtml(s: string): string {
  return s.replace(/&(lt|gt|quot|#39|nbsp|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', '#39': "'", nbsp: '\u00a0', amp: '&' })[e]!);
}

describe('HTML report and SVG in headless Chromium', () => {
  const tmp = tempDir();
  const env = { XDG_CACHE_HOME: tmp.dir };
  const html = join(tmp.dir, 'report.html');
  const svg = join(tmp.dir, 'grid.svg');
  let model: LoadedModel;
  const browser = browserStatus();

  before(async () => {
    model = await LoadedModel.open(prepareModelFolder(FIX, { cacheDir: join(tmp.dir, 'logitlens') }).dir);
    const res = await runCli(['--model', FIX, '--target', ' Paris', '--target', '.', '--html', html, '--svg', svg, PROMPT], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /wrote .*report\.html/);
  });
  after(async () => {
    await model.close();
    tmp.cleanup();
  });

  function needBrowser(t: { skip(msg: string): void }): boolean {
    if (browser.ok) return true;
    if (browser.skip) {
      t.skip(browser.why);
      return false;
    }
    assert.fail(browser.why);
  }

  it('is one self-contained file: no external resources, all token text escaped', () => {
    const text = readFileSync(html, 'utf8');
    assert.doesNotMatch(text, /\b(src|href)\s*=\s*["']?(https?:|\/\/)/i, 'no network resources');
    assert.doesNotMatch(text, /<link\b/i);
    assert.equal((text.match(/<script\b/g) ?? []).length, 3, 'only our own three script elements');
    assert.ok(!text.includes('<script>alert'), 'prompt markup must not reach the page as markup');
    assert.ok(!text.includes('<!-- end'), 'a comment opener in a token must be escaped');
  });

  it('renders without console messages; cells, curves and attention are there', async (t) => {
    if (!needBrowser(t)) return;
    const run = await chromium(['--dump-dom'], pathToFileURL(html).href);
    assert.equal(run.code, 0);
    assert.deepEqual(run.console, [], 'the page wrote to the console');
    const dom = run.stdout;
    assert.match(dom, /<body[^>]*data-ready="1"/, 'the page script ran to its end');
    assert.match(dom, /<div id="errors" hidden=""><\/div>/, 'no error banner');

    const ids = model.tokenizer.encode(PROMPT);
    const show = (id: number) => displayToken(model.tokenizer.token(id));
    const heads = [...dom.matchAll(/<th data-c="(\d+)"[^>]*>([^<]*)<\/th>/g)].map((m) => unescapeHtml(m[2]));
    assert.deepEqual(heads, ids.map(show), 'column headers are the input tokens');

    const cells = [...dom.matchAll(/<td data-c="(\d+)" data-l="(\d+)"[^>]*>([^<]*)<\/td>/g)];
    const nLayers = model.config.n_layer + 1;
    assert.equal(cells.length, ids.length * nLayers);
    let fromGolden = 0;
    for (const [, c, l, text] of cells) {
      const pos = Number(c);
      const layer = Number(l);
      const gl = BASE.lens[layer];
      // positions inside golden prompt 3 are unaffected by the text appended after it (causal)
      if (pos < BASE.n_tokens && gl.per_position_top1_gap[pos] >= SWAP_GAP) {
        assert.equal(unescapeHtml(text), show(gl.per_position_top1_ids[pos]), `cell layer ${layer} position ${pos}`);
        fromGolden++;
      } else {
        assert.ok(text.length > 0);
      }
    }
    assert.ok(fromGolden > BASE.n_tokens * nLayers * 0.9, `checked ${fromGolden} cells against golden ids`);
    assert.ok(heads.some((h) => /^<0x[0-9A-F]{2}/.test(h)), 'the prompt has partial UTF-8 tokens, shown as bytes');

    // drawn by the script: four charts (entropy, KL, top-1, targets) and the attention heatmap
    assert.equal((dom.match(/<polyline /g) ?? []).length, 3 + 2);
    assert.match(dom, /<text[^>]*>·Paris<\/text>/);
    assert.equal((dom.match(/<option value="\d+">/g) ?? []).length, model.config.n_layer);
    const att = /<table class="att">([\s\S]*?)<\/table>/.exec(dom);
    assert.ok(att, 'attention heatmap drawn');
    assert.equal((att[1].match(/<th class="row">h\d+<\/th>/g) ?? []).length, model.config.n_head);
  });

  it('hovering a cell shows its top-k with probabilities; clicking plots its position', async (t) => {
    if (!needBrowser(t)) return;
    // a copy of the report with a probe appended: it hovers and clicks one cell, then records what the page shows
    const probe = `<script>
      var td = document.querySelector('td[data-c="2"][data-l="1"]');
      td.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
      td.click();
      var tip = document.getElementById('tip');
      document.body.setAttribute('data-probe', JSON.stringify({ hidden: tip.hidden, rows: [].map.call(tip.children, function (e) { return e.textContent; }), pos: document.getElementById('curvepos').textContent }));
    </script></body>`;
    const copy = join(tmp.dir, 'probe.html');
    writeFileSync(copy, readFileSync(html, 'utf8').replace('</body>', probe));
    const run = await chromium(['--dump-dom'], pathToFileURL(copy).href);
    assert.deepEqual(run.console, []);
    const m = /data-probe="([^"]*)"/.exec(run.stdout);
    assert.ok(m, 'probe ran');
    const probeOut = JSON.parse(unescapeHtml(m[1])) as { hidden: boolean; rows: string[]; pos: string };
    const ids = model.tokenizer.encode(PROMPT);
    const show = (id: number) => displayToken(model.tokenizer.token(id));
    assert.equal(probeOut.hidden, false);
    assert.equal(probeOut.rows[0], `layer 1 · position 2 (${show(ids[2])}) → next ${show(ids[3])}`);
    const topRows = probeOut.rows.filter((r) => /^\d\. /.test(r));
    assert.equal(topRows.length, 5, 'top 5 by default in the HTML report');
    assert.ok(topRows[0].startsWith(`1. ${show(BASE.lens[1].per_position_top1_ids[2])}  `), topRows[0]);
    assert.match(probeOut.rows.at(-2)!, /^·Paris: .* \(rank #\d+\)$/);
    assert.equal(probeOut.pos, `2 (${show(ids[2])})`);
  });

  it('screenshot is a real picture of the page', async (t) => {
    if (!needBrowser(t)) return;
    const png = join(tmp.dir, 'shot.png');
    const run = await chromium([`--screenshot=${png}`, '--window-size=1400,900', '--hide-scrollbars'], pathToFileURL(html).href);
    assert.equal(run.code, 0);
    assert.deepEqual(run.console, []);
    const info = readPng(png);
    assert.equal(info.width, 1400);
    assert.equal(info.height, 900);
    assert.ok(info.bytes > 20_000, `screenshot is only ${info.bytes} bytes`);
    assert.ok(info.distinctBytes > 64, 'screenshot looks blank');
  });

  it('the SVG is well-formed XML with one shaded cell per layer and position', async (t) => {
    const text = readFileSync(svg, 'utf8');
    const n = model.tokenizer.encode(PROMPT).length * (model.config.n_layer + 1);
    assert.equal((text.match(/<g><title>/g) ?? []).length, n);
    assert.doesNotMatch(text, /<script/);
    if (!needBrowser(t)) return;
    // Chromium's XML parser rejects a malformed SVG with a "parsererror" page instead of drawing it
    const run = await chromium(['--dump-dom'], pathToFileURL(svg).href);
    assert.equal(run.code, 0);
    assert.doesNotMatch(run.stdout, /parsererror|error on line/i);
    assert.equal((run.stdout.match(/<rect /g) ?? []).length, n + 3);
  });
});
