import { writeFileAtomic } from '../util/fs.js';
import { LogitlensError, UsageError } from '../errors.js';
import { analyzePictures, type PictureReport } from '../lens/grid.js';
import type { LoadedModel } from '../model/runtime.js';
import { renderAttention } from '../render/attention.js';
import { renderGrid } from '../render/grid.js';
import { renderHtml } from '../render/html.js';
import { SHADE_KINDS, type ShadeKind } from '../render/shade.js';
import { renderTargetTrajectories } from '../render/sparkline.js';
import { renderSvg } from '../render/svg.js';
import { renderTable, terminalStyle } from '../render/table.js';
import { parseLayers } from './args.js';

/** The picture-related flags as commander hands them over. */
export interface PictureFlags {
  grid?: boolean;
  positions?: string;
  shade?: string;
  attention?: string;
  html?: string;
  svg?: string;
}

export interface ParsedPictures {
  grid: boolean;
  positions?: { from: number; to: number };
  shade: ShadeKind;
  /** "all" or a layer list, resolved once the model's depth is known */
  attention?: string;
  html?: string;
  svg?: string;
}

export interface AnalyzeBase {
  k?: number;
  layers?: number[];
  position?: number;
  finalNorm: boolean;
  targets: number[];
  json: boolean;
}

export interface Io {
  write(s: string): Promise<void>;
  note(msg: string): void;
}

/** Checked before the model loads, so a typo fails fast. */
export function parsePictureFlags(o: PictureFlags): ParsedPictures {
  const shade = (o.shade ?? 'prob') as ShadeKind;
  if (!SHADE_KINDS.includes(shade)) throw new UsageError(`--shade ${o.shade} is not one of ${SHADE_KINDS.join(', ')}`);
  let positions: ParsedPictures['positions'];
  if (o.positions !== undefined) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(o.positions);
    if (!m) throw new UsageError(`--positions "${o.positions}" is not a range; use e.g. --positions 10-30 (first and last position, from 0) or --positions 7`);
    positions = { from: Number(m[1]), to: Number(m[2] ?? m[1]) };
    if (positions.to < positions.from) throw new UsageError(`--positions ${o.positions} runs backwards; write the smaller position first`);
  }
  for (const [flag, v] of [['--html', o.html], ['--svg', o.svg]] as const) {
    if (v !== undefined && v.trim() === '') throw new UsageError(`${flag} needs a file name, e.g. ${flag} report.${flag.slice(2)}`);
  }
  return { grid: !!o.grid, positions, shade, attention: o.attention, html: o.html, svg: o.svg };
}

/** Does this request need the picture path (instead of the plain per-layer table)? */
export function wantsPictures(p: ParsedPictures, targets: number[]): boolean {
  return p.grid || p.positions !== undefined || p.attention !== undefined || p.html !== undefined || p.svg !== undefined || targets.length > 0;
}

function attentionLayers(spec: string, nLayer: number): number[] {
  if (spec.trim().toLowerCase() === 'all') return Array.from({ length: nLayer }, (_, i) => i + 1);
  return parseLayers(spec, nLayer, '--attention');
}

export async function picturesAction(model: LoadedModel, id: string, prompt: string, base: AnalyzeBase, p: ParsedPictures, io: Io): Promise<void> {
  const nLayer = model.config.n_layer;
  const askedAttention = p.attention !== undefined ? attentionLayers(p.attention, nLayer) : undefined;
  if (askedAttention && !model.hasAttention) {
    throw new LogitlensError(`the ONNX graph in ${model.dir} does not expose attention probabilities; rebuild it with logitlens export to use --attention`);
  }
  const files = p.html !== undefined || p.svg !== undefined;
  // the HTML report offers every layer's attention in a selector, when the graph has it
  const attention = askedAttention ?? (p.html !== undefined && model.hasAttention ? attentionLayers('all', nLayer) : undefined);
  const report = await analyzePictures(model, prompt, {
    position: base.position, layers: base.layers, finalNorm: base.finalNorm, targets: base.targets,
    k: base.k ?? (p.html !== undefined ? 5 : undefined),
    grid: p.grid || files || p.positions !== undefined, positions: p.positions, attention,
  }, id);
  const info = (t: number) => model.tokenizer.token(t);
  if (p.html !== undefined) {
    writeAtomic(p.html, renderHtml(report, info, { shade: p.shade }));
    io.note(`wrote ${p.html}`);
  }
  if (p.svg !== undefined) {
    writeAtomic(p.svg, renderSvg(report, info, { shade: p.shade }));
    io.note(`wrote ${p.svg}`);
  }
  const shown: PictureReport = { ...report };
  if (!askedAttention) delete shown.attention;
  if (!(p.grid || p.positions !== undefined)) delete shown.positions;
  if (base.json) {
    await io.write(JSON.stringify(shown, null, 2) + '\n');
    return;
  }
  const style = terminalStyle(process.stdout);
  const parts = [
    shown.positions ? renderGrid(shown, info, style, { shade: p.shade, explicitPositions: p.positions !== undefined }) : renderTable(shown, info, style),
    renderAttention(shown, info, style),
    renderTargetTrajectories(shown, info, style),
  ];
  await io.write(parts.filter((s) => s !== '').join('\n'));
}

/** An output file: written atomically, with a message that says what to do when it cannot be. */
export function writeAtomic(path: string, data: string): void {
  try {
    writeFileAtomic(path, data);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new LogitlensError(`cannot write ${path}: ${err.code ?? err.message.split('\n')[0]}; check that the folder exists and is writable`);
  }
}
