import { UsageError } from '../errors.js';

/** "0,6,12", "8-12", "0,3-5,-1" (negative counts from the end: -1 = last layer). */
export function parseLayers(spec: string, nLayer: number, flag = '--layers'): number[] {
  const out: number[] = [];
  const fix = (v: number) => (v < 0 ? nLayer + 1 + v : v);
  const num = (s: string): number => {
    if (!/^-?\d+$/.test(s.trim())) throw new UsageError(`${flag}: "${s}" is not a layer number; use e.g. ${flag} 0,6,12 or ${flag} 8-12`);
    return fix(Number(s.trim()));
  };
  const parts = spec.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new UsageError(`${flag} "${spec}" has an empty item; use e.g. ${flag} 0,6,12 or ${flag} 8-12`);
  for (const part of parts) {
    const m = /^(-?\d+)\s*-\s*(-?\d+)$/.exec(part);
    if (m) {
      const a = num(m[1]);
      const b = num(m[2]);
      if (a > b) throw new UsageError(`${flag} range ${part} runs backwards; write the smaller layer first`);
      for (let l = a; l <= b; l++) out.push(l);
    } else {
      out.push(num(part));
    }
  }
  for (const l of out) {
    if (l < 0 || l > nLayer) throw new UsageError(`${flag}: layer ${l} does not exist; this model has layers 0..${nLayer} (0 = embeddings)`);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

export function parseIntStrict(flag: string, value: string): number {
  if (!/^[-+]?\d+$/.test(value.trim())) throw new UsageError(`${flag} takes a whole number (got "${value}")`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag} ${value} is out of range`);
  return n;
}

/** commander accumulator for repeatable flags */
export function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

/** Flags shared by single-prompt and batch runs that can be checked before the model loads. */
export interface CommonFlags {
  threads?: number;
  k?: number;
  position?: number;
  targetIds: number[];
}

export function parseCommonFlags(o: { threads?: string; k?: string; position?: string; targetId?: string[] }): CommonFlags {
  const threads = o.threads === undefined ? undefined : parseIntStrict('--threads', o.threads);
  if (threads !== undefined && threads < 1) throw new UsageError('--threads must be at least 1');
  const k = o.k === undefined ? undefined : parseIntStrict('-k', o.k);
  const position = o.position === undefined ? undefined : parseIntStrict('--position', o.position);
  const targetIds = (o.targetId ?? []).map((v) => parseIntStrict('--target-id', v));
  if (k !== undefined && k < 1) throw new UsageError(`-k must be at least 1 (got ${k})`);
  return { threads, k, position, targetIds };
}
