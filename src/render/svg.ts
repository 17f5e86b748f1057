import type { PictureReport } from '../lens/grid.js';
import { displayToken, type TokenInfo } from '../model/tokenizer.js';
import { escapeXml } from './escape.js';
import { isHit, layerLabel } from './grid.js';
import { colormap, inkOn, gridView, type ShadeKind } from './shade.js';
import { formatProb, truncate } from './table.js';

export interface SvgOptions {
  shade: ShadeKind;
}

const CELL_W = 64;
const CELL_H = 20;
const LEFT = 44;
const TOP = 34;
const TOKEN_CHARS = 9;
const FONT = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";

/** The grid heatmap alone, as a standalone SVG (figures for papers): fixed sizes, no script. */
export function renderSvg(report: PictureReport, tokenInfo: (id: number) => TokenInfo, opts: SvgOptions): string {
  const { cols, layers, scale } = gridView(report, opts.shade, 'renderSvg');
  const show = (id: number) => displayToken(tokenInfo(id));
  const nRows = layers.length;
  const gridW = cols.length * CELL_W;
  const gridH = nRows * CELL_H;
  const labelsH = 84;
  const width = Math.max(LEFT + gridW + 16, 480);
  const height = TOP + gridH + labelsH + 44;
  const y0 = TOP;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="10">`);
  out.push(`<title>${escapeXml(`logit lens: ${report.model.id}: ${report.prompt}`)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${LEFT}" y="20" font-size="12" font-weight="bold">${escapeXml(`logit lens · ${report.model.id} · shade: ${scale.label}`)}</text>`);
  out.push(`<text x="${LEFT - 6}" y="${y0 - 6}" text-anchor="end" fill="#555">layer</text>`);
  cols.forEach((col, ci) => {
    const x = LEFT + ci * CELL_W;
    for (let ri = 0; ri < nRows; ri++) {
      const cell = col.layers[nRows - 1 - ri]; // the last layer on top, embeddings at the bottom
      const y = y0 + ri * CELL_H;
      const t = scale.t(cell);
      const hit = isHit(report, col, cell);
      const tip = `layer ${layerLabel(cell.layer)}, position ${col.position}: ${show(cell.top[0].id)} ${formatProb(cell.top[0].prob)}`;
      out.push(`<g><title>${escapeXml(tip)}</title><rect x="${x}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="${colormap(t)}"${hit ? ' stroke="#e8175d" stroke-width="2"' : ''}/>` +
        `<text x="${x + 4}" y="${y + 14}" fill="${inkOn(t)}">${escapeXml(truncate(show(cell.top[0].id), TOKEN_CHARS))}</text></g>`);
    }
    const ly = y0 + gridH + 8;
    out.push(`<text transform="translate(${x + CELL_W / 2 + 3},${ly}) rotate(-45)" text-anchor="end" fill="#222">${escapeXml(truncate(show(report.tokens[col.position].id), 14))}</text>`);
  });
  layers.slice().reverse().forEach((l, ri) => {
    out.push(`<text x="${LEFT - 6}" y="${y0 + ri * CELL_H + 14}" text-anchor="end" fill="#222">${layerLabel(l)}</text>`);
  });
  // legend: the color ramp with its ends, and the hit outline
  const ly = y0 + gridH + labelsH;
  const stops = Array.from({ length: 11 }, (_, i) => `<stop offset="${i * 10}%" stop-color="${colormap(i / 10)}"/>`).join('');
  out.push(`<defs><linearGradient id="ramp">${stops}</linearGradient></defs>`);
  out.push(`<rect x="${LEFT}" y="${ly}" width="160" height="10" fill="url(#ramp)"/>`);
  out.push(`<text x="${LEFT}" y="${ly + 22}">${escapeXml(scale.format(0))}</text>`);
  out.push(`<text x="${LEFT + 160}" y="${ly + 22}" text-anchor="end">${escapeXml(scale.format(scale.max))}</text>`);
  out.push(`<rect x="${LEFT + 180}" y="${ly}" width="14" height="10" fill="none" stroke="#e8175d" stroke-width="2"/>`);
  out.push(`<text x="${LEFT + 200}" y="${ly + 9}">top-1 is the next input token</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
