import { Chalk, type ChalkInstance } from 'chalk';
import type { GridCellStats, GridColumn, PictureReport } from '../lens/grid.js';
import { displayToken, type TokenInfo } from '../model/tokenizer.js';
import { colormap, inkOn, SHADE_CHARS, shadeChar, shadeScale, type ShadeKind, type ShadeScale } from './shade.js';
import { stringWidth, truncate, type TableStyle } from './table.js';

export interface GridRenderOptions {
  shade: ShadeKind;
  /** the columns were chosen with --positions: window from their start instead of around the analyzed position */
  explicitPositions?: boolean;
}

const MIN_CELL = 8;
const MAX_CELL = 12;
/** marks a cell whose top-1 is the prompt's actual next token */
export const HIT_MARK = '*';

export function padEndWidth(s: string, w: number): string {
  return s + ' '.repeat(Math.max(0, w - stringWidth(s)));
}

/** Row label: layer 0 is the embeddings. */
export function layerLabel(layer: number): string {
  return layer === 0 ? 'emb' : String(layer);
}

/** Does the lens's top-1 at this column equal the next input token? */
export function isHit(report: PictureReport, col: GridColumn, cell: GridCellStats): boolean {
  const next = report.tokens[col.position + 1];
  return next !== undefined && cell.top[0].id === next.id;
}

/** Which columns fit in `avail` terminal columns, and how wide each cell is. */
export function fitColumns(
  n: number, widest: number, avail: number, anchor: number, fromStart: boolean,
): { cellW: number; start: number; count: number } {
  let cellW = Math.max(MIN_CELL, Math.min(MAX_CELL, widest + 2));
  while (cellW > MIN_CELL && n * (cellW + 1) > avail + 1) cellW--;
  const fit = Math.max(1, Math.floor((avail + 1) / (cellW + 1)));
  if (n <= fit) return { cellW, start: 0, count: n };
  // keep the analyzed position in view, as far right as possible: the end of a prompt matters most
  const start = fromStart ? 0 : Math.max(0, Math.min(n - fit, anchor - fit + 1));
  return { cellW, start, count: fit };
}

/** Layers × positions picture for a terminal: each cell the lens's top-1 token, shaded. */
export function renderGrid(report: PictureReport, tokenInfo: (id: number) => TokenInfo, style: TableStyle, opts: GridRenderOptions): string {
  const ch = new Chalk({ level: style.color ? 3 : 0 });
  const cols = report.positions ?? [];
  if (cols.length === 0) return '';
  const scale = shadeScale(opts.shade, report);
  const show = (id: number) => displayToken(tokenInfo(id));
  const m = report.model;
  const layers = cols[0].layers.map((c) => c.layer);
  const lw = Math.max(3, ...layers.map((l) => layerLabel(l).length));
  const avail = style.width - lw - 3;
  const widest = Math.max(...cols.map((c) => stringWidth(show(report.tokens[c.position].id))), ...cols.flatMap((c) => c.layers.map((x) => stringWidth(show(x.top[0].id)))));
  const analyzed = cols.findIndex((c) => c.position === report.position);
  const { cellW, start, count } = fitColumns(cols.length, widest, avail, analyzed >= 0 ? analyzed : cols.length - 1, !!opts.explicitPositions);
  const shown = cols.slice(start, start + count);

  const lines: string[] = [];
  const title = truncate(`grid  ${m.id} · ${layers.length} layers × ${cols.length} positions · final norm ${report.final_norm ? 'on' : 'off'}`, style.width);
  lines.push(ch.bold(title.slice(0, 4)) + title.slice(4));
  // ▸ points at the analyzed position (the one --attention and the targets describe)
  const head = shown.map((c) => padEndWidth((c.position === report.position ? '▸' : ' ') + truncate(show(report.tokens[c.position].id), cellW - 1), cellW)).join(' ');
  lines.push(`${' '.repeat(lw)} │ ${ch.bold(head.trimEnd())}`);
  lines.push(`${'─'.repeat(lw + 1)}┼${'─'.repeat(Math.min(avail + 1, shown.length * (cellW + 1)))}`);
  for (let li = layers.length - 1; li >= 0; li--) {
    const cells = shown.map((c) => gridCell(ch, style.color, scale, report, c, c.layers[li], show, cellW));
    lines.push(`${layerLabel(layers[li]).padStart(lw)} │ ${cells.join(' ')}`.trimEnd());
  }
  lines.push(...legend(ch, style, scale));
  if (shown.length < cols.length) {
    const a = shown[0].position;
    const b = shown[shown.length - 1].position;
    lines.push(ch.dim(truncate(`positions ${a}–${b} of ${cols[0].position}–${cols[cols.length - 1].position} shown (${style.width} columns); choose others with --positions A-B`, style.width)));
  }
  return lines.join('\n') + '\n';
}

function gridCell(
  ch: ChalkInstance, color: boolean, scale: ShadeScale, report: PictureReport, col: GridColumn, cell: GridCellStats,
  show: (id: number) => string, cellW: number,
): string {
  const t = scale.t(cell);
  // the mark hugs its token so it cannot be read as belonging to the next column
  const tok = padEndWidth(truncate(show(cell.top[0].id), cellW - 2) + (isHit(report, col, cell) ? HIT_MARK : ''), cellW - 1);
  if (!color) return `${shadeChar(t)}${tok}`;
  return ch.bgHex(colormap(t)).hex(inkOn(t))(` ${tok}`);
}

function legend(ch: ChalkInstance, style: TableStyle, scale: ShadeScale): string[] {
  const steps = SHADE_CHARS.length;
  const nats = scale.kind === 'entropy' || scale.kind === 'kl';
  const bound = (i: number) => (nats ? ((scale.max * i) / steps).toFixed(1) : `${Math.round((100 * i) / steps)}%`);
  const parts: string[] = [];
  for (let i = 0; i < steps; i++) {
    const t = (i + 0.5) / steps;
    const sw = style.color ? ch.bgHex(colormap(t))('  ') : `'${SHADE_CHARS[i]}'`;
    parts.push(i === steps - 1 ? `${sw}≥${bound(i)}` : `${sw}<${bound(i + 1)}`);
  }
  return [
    ch.dim(`${scale.label}${nats ? ' (nats)' : ''}: `) + parts.join(' '),
    ch.dim(`${HIT_MARK} top-1 is the next input token · ▸ analyzed position · emb = embeddings`),
  ].map((s) => (stringWidth(stripAnsi(s)) > style.width ? truncate(stripAnsi(s), style.width) : s));
}

export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, '');
}
