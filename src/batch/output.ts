import type { LensReport } from '../lens/analyze.js';
import { isError } from './input.js';
import type { BatchRecord } from './run.js';

/** Keys batch mode writes itself; a pass-through field of the same name is dropped (with a warning). */
const OWN_KEYS = new Set(['index', 'error', 'lock_in_layer', 'truncated_tokens', 'version', 'model', 'prompt', 'tokens', 'position', 'final_norm', 'layers', 'self_check_max_abs_diff']);

/** The JSONL object of one record: index, pass-through fields, the version-1 report, lock-in layer. */
export function jsonlObject(r: BatchRecord, onClash?: (key: string) => void): Record<string, unknown> {
  if (isError(r)) return { index: r.index, error: r.error };
  const out: Record<string, unknown> = { index: r.index };
  for (const [key, v] of Object.entries(r.fields)) {
    if (OWN_KEYS.has(key)) onClash?.(key);
    else out[key] = v;
  }
  Object.assign(out, r.report as LensReport, { lock_in_layer: r.lockInLayer });
  if (r.dropped) out.truncated_tokens = r.dropped;
  return out;
}

export function jsonlLine(r: BatchRecord, onClash?: (key: string) => void): string {
  return JSON.stringify(jsonlObject(r, onClash)) + '\n';
}

/** RFC 4180: quote fields holding a comma, quote, CR or LF; double inner quotes. */
export function csvField(v: unknown): string {
  const s = v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const csvRow = (cells: unknown[]) => cells.map(csvField).join(',') + '\r\n';

/**
 * CSV with one row per prompt × layer. A header fixes the columns before any prompt is read, so
 * there is one column group per target given for all prompts (`targetSlots`); targets a prompt
 * adds itself (JSONL "targets"/"target_ids") go to `extra_targets` as a JSON list.
 */
export class CsvWriter {
  constructor(private readonly targetSlots: number) {}

  header(): string {
    const cols = ['index', 'id', 'layer', 'top1_id', 'top1_token', 'top1_prob', 'entropy', 'kl_to_final'];
    for (let j = 1; j <= this.targetSlots; j++) cols.push(`target${j}_id`, `target${j}_token`, `target${j}_prob`, `target${j}_rank`);
    cols.push('extra_targets', 'lock_in_layer', 'error');
    return csvRow(cols);
  }

  rows(r: BatchRecord): string {
    const blanks = (n: number) => new Array<string>(n).fill('');
    if (isError(r)) return csvRow([r.index, '', ...blanks(6 + 4 * this.targetSlots + 2), r.error]);
    const id = r.fields.id;
    let out = '';
    for (const l of r.report.layers) {
      const t = l.targets.slice(0, this.targetSlots);
      const targetCells = t.flatMap((x) => [x.id, x.token, x.prob, x.rank]);
      const extra = l.targets.slice(this.targetSlots).map((x) => ({ id: x.id, token: x.token, prob: x.prob, rank: x.rank }));
      out += csvRow([
        r.index, id, l.layer, l.top[0].id, l.top[0].token, l.top[0].prob, l.entropy, l.kl_to_final,
        ...targetCells, ...blanks(4 * (this.targetSlots - t.length)), extra.length ? extra : '', r.lockInLayer, '',
      ]);
    }
    return out;
  }
}
