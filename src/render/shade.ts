import { UsageError } from '../errors.js';
import type { GridCellStats, GridColumn, PictureReport } from '../lens/grid.js';
import { formatProb } from './table.js';

export const SHADE_KINDS = ['prob', 'entropy', 'kl', 'target'] as const;
export type ShadeKind = (typeof SHADE_KINDS)[number];

export interface ShadeScale {
  kind: ShadeKind;
  /** what the shade means, for legends */
  label: string;
  /** top of the scale: 1 for probabilities, the largest value in the grid for nats */
  max: number;
  value(cell: GridCellStats): number;
  /** 0..1 position on the scale */
  t(cell: GridCellStats): number;
  format(v: number): string;
}

/**
 * Probabilities shade on their absolute 0..1 scale so pictures compare across prompts; entropy and
 * KL have no natural top, so they stretch to the grid's own maximum (the legend says which).
 */
export function shadeScale(kind: ShadeKind, report: PictureReport): ShadeScale {
  const cells = (report.positions ?? []).flatMap((c) => c.layers);
  const nats = (v: number) => `${v.toFixed(2)} nats`;
  let value: (c: GridCellStats) => number;
  let label: string;
  let prob = true;
  switch (kind) {
    case 'prob':
      value = (c) => c.top[0].prob;
      label = 'top-1 probability';
      break;
    case 'target': {
      const t = report.layers[0]?.targets[0];
      if (!t) throw new UsageError('--shade target shades by the first --target\'s probability; add --target " Paris" (or --target-id)');
      value = (c) => c.targets[0].prob;
      label = `probability of ${JSON.stringify(t.token)}`;
      break;
    }
    case 'entropy':
      value = (c) => c.entropy;
      label = 'entropy';
      prob = false;
      break;
    case 'kl':
      value = (c) => Math.max(0, c.kl_to_final);
      label = 'KL to the final layer';
      prob = false;
      break;
  }
  const max = prob ? 1 : Math.max(1e-9, ...cells.map(value));
  return {
    kind, label, max, value,
    t: (c) => Math.max(0, Math.min(1, value(c) / max)),
    format: prob ? formatProb : nats,
  };
}

/** viridis, sampled: perceptually even and readable in greyscale print */
export const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];

export function colormap(t: number): string {
  const x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = hex(VIRIDIS[i]);
  const b = hex(VIRIDIS[i + 1]);
  return '#' + a.map((v, j) => Math.round(v + (b[j] - v) * f).toString(16).padStart(2, '0')).join('');
}

/** Text color that stays readable on colormap(t). */
export function inkOn(t: number): string {
  return t >= 0.55 ? '#000000' : '#ffffff';
}

function hex(c: string): number[] {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
}

/** Characters for shades when there is no color: five steps, blank = lowest. */
export const SHADE_CHARS = [' ', '░', '▒', '▓', '█'];

export function shadeChar(t: number): string {
  return SHADE_CHARS[Math.min(SHADE_CHARS.length - 1, Math.floor(Math.max(0, t) * SHADE_CHARS.length))];
}

/** What the HTML and SVG renderers both start from: the grid's columns, rows and shading. */
export function gridView(report: PictureReport, shade: ShadeKind, who: string): { cols: GridColumn[]; layers: number[]; scale: ShadeScale } {
  const cols = report.positions ?? [];
  if (cols.length === 0) throw new Error(`${who} needs a report with grid positions (analyzePictures with grid: true)`);
  return { cols, layers: cols[0].layers.map((c) => c.layer), scale: shadeScale(shade, report) };
}
