import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import type { LensReport } from '../lens/analyze.js';
import { displayToken, type TokenInfo } from '../model/tokenizer.js';

export interface TableStyle {
  color: boolean;
  /** terminal width to fit */
  width: number;
}

/** NO_COLOR (any non-empty value) wins; otherwise color only on a TTY, unless FORCE_COLOR says so. */
export function terminalStyle(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): TableStyle {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  const force = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  // COLUMNS lets a pipe or a file get a picture sized for the terminal that will show it
  const columns = Number(env.COLUMNS);
  const width = stream.isTTY && stream.columns ? stream.columns : Number.isInteger(columns) && columns >= 40 ? columns : 120;
  return { color: !noColor && (force || !!stream.isTTY), width };
}

const BAR_WIDTH = 10;
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

export function bar(p: number, width = BAR_WIDTH): string {
  const units = Math.round(Math.max(0, Math.min(1, p)) * width * 8);
  return ('█'.repeat(Math.floor(units / 8)) + EIGHTHS[units % 8]).padEnd(width, ' ');
}

export function formatProb(p: number): string {
  if (p >= 0.9995) return '100%';
  if (p >= 0.0995) return `${(p * 100).toFixed(1)}%`;
  if (p >= 0.0001) return `${(p * 100).toFixed(2)}%`;
  return p === 0 ? '0' : p.toExponential(1);
}

/** Shade from dim to bright with probability: high-confidence layers stand out at a glance. */
function shadeProb(ch: ChalkInstance, p: number, text: string): string {
  const level = Math.round(Math.sqrt(Math.max(0, Math.min(1, p))) * 5);
  const colors = ['#3a5f8f', '#3f7fb0', '#3fa0c0', '#4fc0a0', '#9fdf5f', '#ffe14f'];
  return ch.hex(colors[level])(text);
}

/** Cut a display string to `max` terminal columns (wide CJK/emoji count 2). */
/** Color escapes take no columns; truncate keeps them whole and resets color after a cut. */
const ANSI = /\x1b\[[0-9;]*m/y;

export function truncate(s: string, max: number): string {
  if (stringWidth(s) <= max) return s;
  let out = '';
  let w = 0;
  let colored = false;
  for (let i = 0; i < s.length;) {
    ANSI.lastIndex = i;
    const esc = ANSI.exec(s);
    if (esc) {
      out += esc[0];
      colored = true;
      i += esc[0].length;
      continue;
    }
    const ch = String.fromCodePoint(s.codePointAt(i)!);
    const cw = charWidth(ch);
    if (w + cw > max - 1) break;
    out += ch;
    w += cw;
    i += ch.length;
  }
  return out + '…' + (colored ? '\x1b[0m' : '');
}

export function stringWidth(s: string): number {
  let w = 0;
  for (const ch of s.replace(/\x1b\[[0-9;]*m/g, '')) w += charWidth(ch);
  return w;
}

function charWidth(ch: string): number {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x20 || (cp >= 0x300 && cp <= 0x36f) || cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

/** Per-layer top-k table for one analyzed position (what a person reads in a terminal). */
export function renderTable(report: LensReport, tokenInfo: (id: number) => TokenInfo, style: TableStyle): string {
  const ch = new Chalk({ level: style.color ? 3 : 0 });
  const show = (id: number) => displayToken(tokenInfo(id));
  const lines: string[] = [];
  const m = report.model;
  lines.push(`${ch.bold('model')}  ${m.id} · ${m.n_layer} layers · final norm ${report.final_norm ? 'on' : 'off'}`);
  const toks = report.tokens.map((t, i) => (i === report.position ? ch.inverse(`[${show(t.id)}]`) : show(t.id)));
  lines.push(`${ch.bold('prompt')} ${truncate(toks.join(' '), Math.max(20, style.width * 3 - 7))}`);
  lines.push(`${ch.dim(`analyzing position ${report.position} of ${report.tokens.length} (${show(report.tokens[report.position].id)}); layer 0 = embeddings`)}`);

  const k = report.layers[0]?.top.length ?? 0;
  const tokW = 16;
  const fixed = 7 + tokW + BAR_WIDTH + 8 + 9 + 8 + 6 * 3; // columns and padding before "more"
  const moreW = Math.max(10, style.width - fixed);
  const table = new Table({
    head: ['layer', 'top-1', '', 'p', 'entropy', 'KL', ...(k > 1 ? [`top 2–${k}`] : [])],
    style: { head: style.color ? ['bold'] : [], border: style.color ? ['grey'] : [], compact: true, 'padding-left': 1, 'padding-right': 1 },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const L of report.layers) {
    const t1 = L.top[0];
    const more = L.top.slice(1).map((t) => `${show(t.id)} ${formatProb(t.prob)}`).join(', ');
    table.push([
      { content: String(L.layer), hAlign: 'right' },
      truncate(show(t1.id), tokW),
      shadeProb(ch, t1.prob, bar(t1.prob)),
      { content: formatProb(t1.prob), hAlign: 'right' },
      { content: L.entropy.toFixed(2), hAlign: 'right' },
      { content: L.kl_to_final.toFixed(2), hAlign: 'right' },
      ...(k > 1 ? [ch.dim(truncate(more, moreW))] : []),
    ]);
  }
  lines.push(table.toString());

  const targets = report.layers[0]?.targets ?? [];
  if (targets.length) {
    const tt = new Table({
      head: ['layer', ...targets.map((t) => `${show(t.id)}  p / rank`)],
      style: { head: style.color ? ['bold'] : [], border: style.color ? ['grey'] : [], compact: true, 'padding-left': 1, 'padding-right': 1 },
      chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    });
    for (const L of report.layers) {
      tt.push([
        { content: String(L.layer), hAlign: 'right' },
        ...L.targets.map((t) => ({ content: `${shadeProb(ch, t.prob, formatProb(t.prob))} / #${t.rank}`, hAlign: 'right' as const })),
      ]);
    }
    lines.push(ch.bold('targets') + ch.dim('  (rank 1 = top)'));
    lines.push(tt.toString());
  }
  return lines.join('\n') + '\n';
}
