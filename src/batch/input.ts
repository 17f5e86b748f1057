import type { Readable } from 'node:stream';

export type InputFormat = 'txt' | 'jsonl';

/** One line of the input, split at '\n' on raw bytes: invalid UTF-8 is caught per line, not replaced. */
export interface RawLine {
  /** 1-based line number in the input */
  line: number;
  bytes: Buffer;
  /** byte offset just past the line (progress through a file) */
  end: number;
}

/** A prompt to analyze, or a line that cannot be one. `index` is the 0-based input line number. */
export type BatchItem = PromptItem | ErrorItem;

export interface PromptItem {
  index: number;
  line: number;
  prompt: string;
  /** per-prompt target strings (JSONL "targets") */
  targets: string[];
  /** per-prompt target ids (JSONL "target_ids") */
  targetIds: number[];
  /** JSONL fields other than prompt/targets/target_ids, passed through to the output */
  fields: Record<string, unknown>;
}

export interface ErrorItem {
  index: number;
  line: number;
  error: string;
}

export function isError<T extends object>(x: T | ErrorItem): x is ErrorItem {
  return 'error' in x && typeof x.error === 'string';
}

/** The JSONL keys batch mode reads itself; every other key passes through. */
export const INPUT_KEYS = ['prompt', 'targets', 'target_ids'] as const;

/**
 * Lines of a byte stream. Reads chunk by chunk, so memory holds one chunk plus one line however
 * long the input is.
 */
export async function* readLines(stream: AsyncIterable<Buffer | string> | Readable): AsyncGenerator<RawLine> {
  let carry: Buffer[] = [];
  let line = 0;
  let offset = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let from = 0;
    for (let nl = buf.indexOf(10, from); nl >= 0; nl = buf.indexOf(10, from)) {
      carry.push(buf.subarray(from, nl));
      yield { line: ++line, bytes: stripCR(Buffer.concat(carry)), end: offset + nl + 1 };
      carry = [];
      from = nl + 1;
    }
    if (from < buf.length) carry.push(Buffer.from(buf.subarray(from)));
    offset += buf.length;
  }
  if (carry.length) yield { line: ++line, bytes: stripCR(Buffer.concat(carry)), end: offset };
}

function stripCR(b: Buffer): Buffer {
  return b.length && b[b.length - 1] === 13 ? b.subarray(0, b.length - 1) : b;
}

export interface ParseOptions {
  format: InputFormat;
  /** txt: turn \n, \t, \r and \\ into the characters */
  escapes?: boolean;
  /** keep only lines whose index ≡ shard.index (mod shard.count) */
  shard?: { index: number; count: number };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Input lines to batch items: blank lines skipped, other shards' lines skipped unread. */
export async function* parseItems(lines: AsyncIterable<RawLine>, o: ParseOptions): AsyncGenerator<BatchItem> {
  for await (const { line, bytes } of lines) {
    const index = line - 1;
    if (o.shard && index % o.shard.count !== o.shard.index) continue;
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      yield { index, line, error: `line ${line}: not valid UTF-8 (${badUtf8Offset(bytes)}); save the file as UTF-8` };
      continue;
    }
    if (line === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
    if (text.trim() === '') continue;
    yield o.format === 'jsonl' ? parseJsonLine(text, index, line) : { index, line, prompt: o.escapes ? unescape(text) : text, targets: [], targetIds: [], fields: {} };
  }
}

function badUtf8Offset(bytes: Buffer): string {
  // bisect on decodable prefixes to name the first bad byte
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  return `bad byte 0x${bytes[lo]?.toString(16).padStart(2, '0') ?? '??'} at byte ${lo + 1} of the line`;
}

function unescape(s: string): string {
  return s.replace(/\\([ntr\\])/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r', '\\': '\\' })[c]!);
}

function parseJsonLine(text: string, index: number, line: number): BatchItem {
  const fail = (why: string): ErrorItem => ({ index, line, error: `line ${line}: ${why}` });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message}); each line must be one object such as {"prompt": "The capital of France is"}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('is not a JSON object; each line must be one object such as {"prompt": "…"}');
  const o = v as Record<string, unknown>;
  if (typeof o.prompt !== 'string') return fail(`"prompt" must be a string (got ${o.prompt === undefined ? 'no "prompt" key' : typeof o.prompt})`);
  const targets = o.targets ?? [];
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string')) return fail('"targets" must be a list of strings, e.g. [" Paris"]');
  const targetIds = o.target_ids ?? [];
  if (!Array.isArray(targetIds) || !targetIds.every((t) => Number.isSafeInteger(t))) return fail('"target_ids" must be a list of whole numbers, e.g. [6342]');
  const fields: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) if (!(INPUT_KEYS as readonly string[]).includes(k)) fields[k] = val;
  return { index, line, prompt: o.prompt, targets: targets as string[], targetIds: targetIds as number[], fields };
}
