import type { PictureReport } from '../lens/grid.js';
import { displayToken, type TokenInfo } from '../model/tokenizer.js';
import { escapeXml, jsonForScript } from './escape.js';
import { isHit, layerLabel } from './grid.js';
import { colormap, inkOn, gridView, VIRIDIS, type ShadeKind } from './shade.js';

export interface HtmlOptions {
  shade: ShadeKind;
}

/** Attention weights are shown as colors and percentages: 4 decimals keep the file small. */
const round4 = (v: number) => Math.round(v * 1e4) / 1e4;
const round6 = (v: number) => Number(v.toPrecision(6));

/** What the page script reads: display strings and numbers only, never markup. */
interface PageData {
  model: string;
  tokens: string[];
  position: number;
  layers: number[];
  cols: number[];
  /** cells[col][layerIndex] = [top-k [token, prob][], entropy, kl, target probs, target ranks] */
  cells: Array<Array<[Array<[string, number]>, number, number, number[], number[]]>>;
  targets: string[];
  attention: Array<{ layer: number; heads: number[][] }>;
  viridis: string[];
}

/**
 * One self-contained HTML file: the grid as a static table (readable without script, and by
 * tests), hover details, per-layer curves and the attention heatmap drawn by an inline script
 * from embedded JSON. No network access: everything is inline.
 */
export function renderHtml(report: PictureReport, tokenInfo: (id: number) => TokenInfo, opts: HtmlOptions): string {
  const { cols, layers, scale } = gridView(report, opts.shade, 'renderHtml');
  const show = (id: number) => displayToken(tokenInfo(id));
  const tokens = report.tokens.map((t) => show(t.id));
  const data: PageData = {
    model: report.model.id,
    tokens,
    position: report.position,
    layers,
    cols: cols.map((c) => c.position),
    cells: cols.map((c) => c.layers.map((x) => [
      x.top.map((t) => [show(t.id), round6(t.prob)] as [string, number]),
      round6(x.entropy), round6(x.kl_to_final), x.targets.map((t) => round6(t.prob)), x.targets.map((t) => t.rank),
    ])),
    targets: (report.layers[0]?.targets ?? []).map((t) => show(t.id)),
    attention: (report.attention ?? []).map((a) => ({ layer: a.layer, heads: a.heads.map((h) => h.slice(0, report.position + 1).map(round4)) })),
    viridis: VIRIDIS,
  };

  const head = cols.map((c, ci) => `<th data-c="${ci}" title="position ${c.position}">${escapeXml(tokens[c.position])}</th>`).join('');
  const rows: string[] = [];
  for (let li = layers.length - 1; li >= 0; li--) {
    const tds = cols.map((c, ci) => {
      const cell = c.layers[li];
      const t = scale.t(cell);
      return `<td data-c="${ci}" data-l="${li}"${isHit(report, c, cell) ? ' class="hit"' : ''} style="background:${colormap(t)};color:${inkOn(t)}">${escapeXml(show(cell.top[0].id))}</td>`;
    });
    rows.push(`<tr><th>${layerLabel(layers[li])}</th>${tds.join('')}</tr>`);
  }
  const ramp = Array.from({ length: 11 }, (_, i) => colormap(i / 10)).join(',');
  const prompt = report.tokens.map((t, i) => `<span class="tok${i === report.position ? ' at' : ''}" title="position ${i}">${escapeXml(tokens[i])}</span>`).join('');
  const title = `logit lens · ${report.model.id}`;

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<script>
window.addEventListener('error', function (e) {
  var b = document.getElementById('errors');
  if (b) { b.hidden = false; b.textContent += 'This report failed to draw: ' + e.message + '\\n'; }
});
</script>
<style>${CSS}</style>
</head>
<body>
<div id="errors" hidden></div>
<header>
<h1>${escapeXml(title)}</h1>
<p class="meta">${report.model.n_layer} layers · ${report.tokens.length} tokens · final norm ${report.final_norm ? 'on' : 'off'} · analyzed position ${report.position}</p>
<p class="prompt">${prompt}</p>
</header>
<section>
<h2>Top-1 prediction at every layer and position</h2>
<p class="legend"><span class="ramp" style="background:linear-gradient(to right,${ramp})"></span> ${escapeXml(scale.label)}: ${escapeXml(scale.format(0))} → ${escapeXml(scale.format(scale.max))}
<span class="hitkey">outlined</span> top-1 is the next input token · hover a cell for the top ${cols[0].layers[0].top.length}, click to plot its position below</p>
<div class="scroll" id="gridbox"><table class="grid" id="grid"><thead><tr><th class="corner">layer</th>${head}</tr></thead><tbody>
${rows.join('\n')}
</tbody></table></div>
</section>
<section>
<h2>By layer at position <span id="curvepos"></span></h2>
<div id="curves" class="curves"></div>
</section>
<section id="attsec">
<h2>Attention from position ${report.position} (${escapeXml(tokens[report.position])}), per head</h2>
<p><label>layer <select id="attlayer"></select></label> <span class="note">shade relative to the layer's strongest weight; hover for values</span></p>
<div class="scroll" id="attbox"></div>
</section>
<div id="tip" hidden></div>
<script type="application/json" id="data">${jsonForScript(data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

const CSS = `
:root { --mono: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace; }
body { font: 14px/1.4 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 16px 24px; color: #1b1b1b; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 20px 0 6px; }
.meta, .note { color: #666; } .prompt { font-family: var(--mono); font-size: 12px; line-height: 1.9; max-height: 7.6em; overflow: auto; }
.tok { display: inline-block; line-height: 1.3; border: 1px solid #ddd; border-radius: 3px; padding: 0 2px; margin-right: 2px; white-space: pre; }
.tok.at { background: #fde725; border-color: #b5a000; }
#errors { background: #b00020; color: #fff; padding: 8px; white-space: pre-wrap; font-family: var(--mono); }
.legend { font-size: 13px; } .ramp { display: inline-block; width: 140px; height: 12px; vertical-align: middle; border: 1px solid #999; }
.hitkey { outline: 2px solid #e8175d; outline-offset: -2px; padding: 0 4px; margin-left: 12px; }
.scroll { overflow: auto; max-height: 78vh; max-width: 100%; width: fit-content; border: 1px solid #ccc; }
table { border-collapse: separate; border-spacing: 0; }
.grid td, .grid thead th { font: 11px/18px var(--mono); width: 64px; min-width: 64px; max-width: 64px; height: 18px; padding: 0 3px;
  overflow: hidden; text-overflow: ellipsis; white-space: pre; box-sizing: border-box; cursor: default; }
.grid thead th { position: sticky; top: 0; z-index: 2; background: #f4f4f4; border-bottom: 1px solid #bbb; font-weight: 600; text-align: left; }
.grid tbody th, .att th.row { position: sticky; left: 0; z-index: 1; background: #f4f4f4; font: 11px/18px var(--mono); padding: 0 6px; text-align: right; border-right: 1px solid #bbb; }
.grid th.corner, .att th.corner { left: 0; z-index: 3; text-align: right; }
.grid td.hit { box-shadow: inset 0 0 0 2px #e8175d; }
.grid td.sel, .grid th.sel { outline: 1px dashed #000; outline-offset: -1px; }
.curves { display: flex; flex-wrap: wrap; gap: 16px; } .curves svg { background: #fafafa; border: 1px solid #ddd; }
.curves text { font: 11px system-ui, sans-serif; fill: #333; }
.att td { width: 22px; min-width: 22px; height: 20px; padding: 0; }
.att thead th { position: sticky; top: 0; z-index: 2; background: #f4f4f4; font: 10px var(--mono); writing-mode: vertical-rl; transform: rotate(180deg);
  white-space: pre; max-height: 90px; overflow: hidden; text-overflow: ellipsis; padding: 2px 0; }
#tip { position: fixed; z-index: 10; pointer-events: none; background: #fff; border: 1px solid #888; box-shadow: 0 2px 8px rgba(0,0,0,.2);
  padding: 6px 8px; font: 12px var(--mono); white-space: pre; max-width: 480px; }
#tip .bar { display: inline-block; height: 8px; background: #31688e; vertical-align: middle; margin-right: 6px; }
`;

// Plain ES2015 so it runs in any current browser without a build step; data comes only from
// the JSON block and reaches the page through textContent and attributes, never as markup.
const SCRIPT = `
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('data').textContent);
  var SVG = 'http://www.w3.org/2000/svg';
  function color(t) {
    var s = D.viridis, x = Math.max(0, Math.min(1, t)) * (s.length - 1), i = Math.min(s.length - 2, Math.floor(x)), f = x - i;
    var a = hex(s[i]), b = hex(s[i + 1]);
    return 'rgb(' + [0, 1, 2].map(function (j) { return Math.round(a[j] + (b[j] - a[j]) * f); }).join(',') + ')';
  }
  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.slice(i, i + 2), 16); }); }
  function pct(p) { return p >= 0.9995 ? '100%' : p >= 0.0995 ? (p * 100).toFixed(1) + '%' : p >= 0.0001 ? (p * 100).toFixed(2) + '%' : p === 0 ? '0' : p.toExponential(1); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function label(l) { return l === 0 ? 'emb' : String(l); }

  // hover: the cell's top-k, entropy, KL and targets
  var tip = document.getElementById('tip');
  var grid = document.getElementById('grid');
  grid.addEventListener('mouseover', function (ev) {
    var td = ev.target.closest('td');
    if (!td) { tip.hidden = true; return; }
    var c = +td.dataset.c, li = +td.dataset.l, cell = D.cells[c][li], p = D.cols[c];
    tip.textContent = '';
    tip.appendChild(el('div', {}, 'layer ' + label(D.layers[li]) + ' · position ' + p + ' (' + D.tokens[p] + ')' + (p + 1 < D.tokens.length ? ' → next ' + D.tokens[p + 1] : '')));
    cell[0].forEach(function (e, j) {
      var row = el('div');
      var bar = el('span', { class: 'bar' }); bar.style.width = Math.max(1, Math.round(e[1] * 120)) + 'px';
      row.appendChild(bar);
      row.appendChild(document.createTextNode((j + 1) + '. ' + e[0] + '  ' + pct(e[1])));
      tip.appendChild(row);
    });
    tip.appendChild(el('div', {}, 'entropy ' + cell[1].toFixed(2) + ' · KL to final ' + cell[2].toFixed(2) + ' nats'));
    D.targets.forEach(function (t, j) { tip.appendChild(el('div', {}, t + ': ' + pct(cell[3][j]) + ' (rank #' + cell[4][j] + ')')); });
    tip.hidden = false;
  });
  grid.addEventListener('mousemove', function (ev) {
    var x = ev.clientX + 14, y = ev.clientY + 14, r = tip.getBoundingClientRect();
    if (x + r.width > innerWidth) x = ev.clientX - r.width - 10;
    if (y + r.height > innerHeight) y = ev.clientY - r.height - 10;
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  });
  grid.addEventListener('mouseleave', function () { tip.hidden = true; });
  grid.addEventListener('click', function (ev) {
    var c = ev.target.closest('[data-c]');
    if (c) select(+c.dataset.c);
  });

  // per-layer curves for one position: entropy, KL to final, target probabilities
  function chart(title, series, yMax, fmt) {
    var W = 360, H = 200, L = 44, R = 10, T = 22, B = 30, n = D.layers.length;
    var s = sv('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    s.appendChild(sv('text', { x: L, y: 14, 'font-weight': 'bold' }, title));
    var x = function (i) { return L + (n === 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1)); };
    var y = function (v) { return T + (1 - v / yMax) * (H - T - B); };
    [0, 0.5, 1].forEach(function (f) {
      s.appendChild(sv('line', { x1: L, x2: W - R, y1: y(f * yMax), y2: y(f * yMax), stroke: '#ddd' }));
      s.appendChild(sv('text', { x: L - 4, y: y(f * yMax) + 4, 'text-anchor': 'end' }, fmt(f * yMax)));
    });
    var step = Math.max(1, Math.ceil(n / 12));
    D.layers.forEach(function (l, i) { if (i % step === 0 || i === n - 1) s.appendChild(sv('text', { x: x(i), y: H - 12, 'text-anchor': 'middle' }, label(l))); });
    s.appendChild(sv('text', { x: W - R, y: H - 1, 'text-anchor': 'end' }, 'layer'));
    series.forEach(function (se, k) {
      var pts = se.values.map(function (v, i) { return x(i).toFixed(1) + ',' + y(v).toFixed(1); }).join(' ');
      s.appendChild(sv('polyline', { points: pts, fill: 'none', stroke: se.color, 'stroke-width': 2 }));
      se.values.forEach(function (v, i) { s.appendChild(sv('circle', { cx: x(i), cy: y(v), r: 2.5, fill: se.color })); });
      if (se.name) s.appendChild(sv('text', { x: W - R - 4, y: T + 12 + 13 * k, 'text-anchor': 'end', fill: se.color }, se.name));
    });
    return s;
  }
  // round an axis top up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten
  function nice(v) {
    if (!(v > 0)) return 1;
    var e = Math.pow(10, Math.floor(Math.log10(v)));
    var m = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].filter(function (m) { return m * e >= v * (1 - 1e-9); })[0];
    return m * e;
  }
  var curves = document.getElementById('curves');
  function select(c) {
    document.querySelectorAll('.sel').forEach(function (e) { e.classList.remove('sel'); });
    document.querySelectorAll('#grid [data-c="' + c + '"]').forEach(function (e) { e.classList.add('sel'); });
    var cells = D.cells[c], p = D.cols[c];
    document.getElementById('curvepos').textContent = p + ' (' + D.tokens[p] + ')';
    curves.textContent = '';
    var ent = cells.map(function (x) { return x[1]; }), kl = cells.map(function (x) { return Math.max(0, x[2]); });
    var f2 = function (v) { return v.toFixed(1); };
    curves.appendChild(chart('entropy (nats)', [{ values: ent, color: '#31688e' }], nice(Math.max.apply(null, ent)), f2));
    curves.appendChild(chart('KL to final layer (nats)', [{ values: kl, color: '#e8175d' }], nice(Math.max.apply(null, kl)), f2));
    curves.appendChild(chart('top-1 probability', [{ values: cells.map(function (x) { return x[0][0][1]; }), color: '#35b779' }], 1, pct));
    if (D.targets.length) {
      var palette = ['#440154', '#e8175d', '#21918c', '#f28e2b', '#3e4989', '#b5a000'];
      var ts = D.targets.map(function (t, j) { return { name: t, values: cells.map(function (x) { return x[3][j]; }), color: palette[j % palette.length] }; });
      var tmax = Math.max.apply(null, ts.map(function (s) { return Math.max.apply(null, s.values); }));
      curves.appendChild(chart('target probability', ts, Math.min(1, nice(tmax)), pct));
    }
  }
  var start = D.cols.indexOf(D.position);
  select(start >= 0 ? start : D.cols.length - 1);

  // attention heatmap of one layer: heads x input tokens up to the analyzed position
  var sec = document.getElementById('attsec');
  if (!D.attention.length) {
    sec.hidden = true;
  } else {
    var sel = document.getElementById('attlayer');
    D.attention.forEach(function (a, i) { sel.appendChild(el('option', { value: i }, String(a.layer))); });
    var box = document.getElementById('attbox');
    var draw = function () {
      var a = D.attention[+sel.value];
      var max = 1e-12;
      a.heads.forEach(function (h) { h.forEach(function (v) { if (v > max) max = v; }); });
      var t = el('table', { class: 'att' }), thead = el('thead'), hr = el('tr');
      hr.appendChild(el('th', { class: 'corner' }, 'head'));
      for (var k = 0; k < a.heads[0].length; k++) hr.appendChild(el('th', { title: 'position ' + k }, D.tokens[k]));
      thead.appendChild(hr); t.appendChild(thead);
      var tb = el('tbody');
      a.heads.forEach(function (h, hi) {
        var tr = el('tr');
        tr.appendChild(el('th', { class: 'row' }, 'h' + hi));
        h.forEach(function (v, k) {
          var td = el('td', { title: 'layer ' + a.layer + ' head ' + hi + ' → ' + D.tokens[k] + ' (position ' + k + '): ' + pct(v) });
          td.style.background = color(v / max);
          tr.appendChild(td);
        });
        tb.appendChild(tr);
      });
      t.appendChild(tb);
      box.textContent = '';
      box.appendChild(t);
    };
    sel.value = String(D.attention.length - 1);
    sel.addEventListener('change', draw);
    draw();
  }
  document.body.setAttribute('data-ready', '1');
})();
`;
