import { Chalk } from 'chalk';
import type { LensReport } from '../lens/analyze.js';
import { displayToken, type TokenInfo } from '../model/tokenizer.js';
import { padEndWidth, layerLabel } from './grid.js';
import { formatProb, stringWidth, truncate, type TableStyle } from './table.js';

const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** One character per value, scaled to 0..max (a flat line stays at the bottom). */
export function sparkline(values: number[], max = Math.max(0, ...values)): string {
  return values.map((v) => SPARKS[max > 0 ? Math.min(SPARKS.length - 1, Math.max(0, Math.round((v / max) * (SPARKS.length - 1)))) : 0]).join('');
}

/**
 * Per-layer trajectory of each target at the analyzed position: probability (linear, up to its
 * largest value) and rank (log scale, so climbing from #20000 to #1 reads as a rising line).
 */
export function renderTargetTrajectories(report: LensReport, tokenInfo: (id: number) => TokenInfo, style: TableStyle): string {
  const targets = report.layers[0]?.targets ?? [];
  if (targets.length === 0) return '';
  const ch = new Chalk({ level: style.color ? 3 : 0 });
  const V = report.model.vocab_size;
  const first = report.layers[0].layer;
  const last = report.layers[report.layers.length - 1].layer;
  const names = targets.map((t) => truncate(displayToken(tokenInfo(t.id)), 14));
  const nameW = Math.max(6, ...names.map((n) => stringWidth(n)));
  const lines = [ch.bold('targets') + ch.dim(` by layer, ${layerLabel(first)} → ${layerLabel(last)} (left to right) at position ${report.position}`)];
  targets.forEach((t, j) => {
    const probs = report.layers.map((L) => L.targets[j].prob);
    const ranks = report.layers.map((L) => L.targets[j].rank);
    const best = probs.indexOf(Math.max(...probs));
    const rankLevel = ranks.map((r) => 1 - Math.log(r) / Math.log(V));
    const p = `${sparkline(probs)}  ${formatProb(probs[0])} → ${formatProb(probs[probs.length - 1])} (max ${formatProb(probs[best])} at ${layerLabel(report.layers[best].layer)})`;
    const r = `${sparkline(rankLevel, 1)}  #${ranks[0]} → #${ranks[ranks.length - 1]} (best #${Math.min(...ranks)})`;
    lines.push(truncate(`${padEndWidth(names[j], nameW)}  p    ${p}`, style.width));
    lines.push(truncate(`${' '.repeat(nameW)}  rank ${r}`, style.width));
  });
  return lines.map((l) => truncate(l, style.width)).join('\n') + '\n';
}
