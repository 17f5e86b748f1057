import { Chalk } from 'chalk';
import type { PictureReport } from '../lens/grid.js';
import { displayToken, type TokenInfo } from '../model/tokenizer.js';
import { colormap, shadeChar } from './shade.js';
import { formatProb, truncate, type TableStyle } from './table.js';

const NAMED = 3;

/** The strongest keys of one head's attention row, best first. */
export function strongestKeys(row: number[], n = NAMED): number[] {
  return row.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, n).map(([, i]) => i);
}

/**
 * One heat strip per head: where the analyzed position looks. Each strip is shaded relative to the
 * head's own strongest key (heads differ in sharpness; the named tokens carry the absolute numbers).
 */
export function renderAttention(report: PictureReport, tokenInfo: (id: number) => TokenInfo, style: TableStyle): string {
  const att = report.attention ?? [];
  if (att.length === 0) return '';
  const ch = new Chalk({ level: style.color ? 3 : 0 });
  const show = (i: number) => displayToken(tokenInfo(report.tokens[i].id));
  const seen = new Map<number, number>();
  for (const t of report.tokens) seen.set(t.id, (seen.get(t.id) ?? 0) + 1);
  // a token that occurs more than once is named with its position, or the names would be ambiguous
  const name = (i: number) => truncate(show(i), 10) + ((seen.get(report.tokens[i].id) ?? 0) > 1 ? `@${i}` : '');
  const keys = report.position + 1; // the causal mask leaves later tokens at 0
  const nHead = att[0].heads.length;
  const labelW = `${report.model.n_layer}.h${nHead - 1}`.length;
  const stripMax = Math.max(8, Math.min(64, style.width - labelW - 4 - 36));
  const bin = Math.ceil(keys / stripMax);
  const cells = Math.ceil(keys / bin);
  const lines = [
    ch.bold('attention') + ch.dim(` from position ${report.position} (${truncate(show(report.position), 12)}) to tokens 0–${report.position}, per head`),
  ];
  if (bin > 1) lines.push(ch.dim(`each strip character covers ${bin} tokens (their largest weight)`));
  for (const { layer, heads } of att) {
    heads.forEach((row, h) => {
      const visible = row.slice(0, keys);
      const max = Math.max(1e-12, ...visible);
      let strip = '';
      for (let c = 0; c < cells; c++) {
        const t = Math.max(...visible.slice(c * bin, (c + 1) * bin)) / max;
        strip += style.color ? ch.bgHex(colormap(t))(' ') : shadeChar(t);
      }
      const named = strongestKeys(visible).map((i) => `${name(i)} ${formatProb(visible[i])}`).join(', ');
      const label = `${layer}.h${h}`.padStart(labelW);
      const used = labelW + cells + 4;
      lines.push(`${label} │${strip}│ ${truncate(named, Math.max(10, style.width - used))}`);
    });
  }
  lines.push(ch.dim(`rows: layer.head · shade relative to each head's max${style.color ? '' : `: ' ░▒▓█' weak → strong`}`));
  return lines.map((l) => truncate(l, style.width)).join('\n') + '\n';
}
