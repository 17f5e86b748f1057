import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { LogitlensError } from '../errors.js';

export interface TokenInfo {
  id: number;
  /** exact decoded string (a lone piece of a UTF-8 character decodes to U+FFFD) */
  text: string;
  /** the raw bytes the token stands for */
  bytes: Uint8Array;
  /** true when `bytes` are valid UTF-8 on their own */
  complete: boolean;
}

export interface Gpt2Tokenizer {
  encode(text: string): number[];
  token(id: number): TokenInfo;
  vocabSize: number;
}

/** GPT-2's reversible byte<->unicode map: byte-level BPE strings are bytes spelled with these characters. */
function unicodeToByte(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const m = new Map<string, number>();
  bs.forEach((b, i) => m.set(String.fromCodePoint(cs[i]), b));
  return m;
}

/** tokenizer.json equivalent of GPT-2's vocab.json + merges.txt (what transformers builds from them). */
function tokenizerJsonFromVocab(vocab: Record<string, number>, mergesTxt: string): Record<string, unknown> {
  const merges = mergesTxt
    .split('\n')
    .filter((l, i) => l.trim() !== '' && !(i === 0 && l.startsWith('#version')))
    .map((l) => l.split(' '));
  const eos = '<|endoftext|>';
  const added = vocab[eos] !== undefined
    ? [{ id: vocab[eos], content: eos, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }]
    : [];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab, merges,
    },
  };
}

export function tokenizerFiles(dir: string): string[] | undefined {
  if (existsSync(join(dir, 'tokenizer.json'))) return ['tokenizer.json'];
  if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) return ['vocab.json', 'merges.txt'];
  return undefined;
}

export function loadTokenizer(dir: string): Gpt2Tokenizer {
  const files = tokenizerFiles(dir);
  if (!files) {
    throw new LogitlensError(`${dir} has no tokenizer: it needs tokenizer.json, or vocab.json and merges.txt (copy them from the original model folder)`);
  }
  let json: Record<string, unknown>;
  try {
    json = files[0] === 'tokenizer.json'
      ? JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'))
      : tokenizerJsonFromVocab(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')), readFileSync(join(dir, 'merges.txt'), 'utf8'));
  } catch (e) {
    throw new LogitlensError(`cannot read the tokenizer in ${dir}: ${(e as Error).message}; re-download the tokenizer files`);
  }
  let configJson: Record<string, unknown> = {};
  const cfgPath = join(dir, 'tokenizer_config.json');
  if (existsSync(cfgPath)) {
    try {
      configJson = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch {
      // a broken tokenizer_config.json only loses display niceties; the vocabulary is what matters
    }
  }
  // exact single-token strings: no "clean up" of spaces before punctuation
  const tok = new Tokenizer(json, { ...configJson, clean_up_tokenization_spaces: false });
  const u2b = unicodeToByte();
  // counted from the JSON: get_vocab() would build a second 50k-entry map just for its size
  const model = json.model as { vocab: Record<string, number> };
  const added = (json.added_tokens as Array<{ id: number }> | undefined) ?? [];
  const vocabSize = Math.max(Object.keys(model.vocab).length, ...added.map((t) => t.id + 1));
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const cache = new Map<number, TokenInfo>();
  const specials = new Set<number>([...tok.get_added_tokens_decoder().keys()]);
  return {
    vocabSize,
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    token: (id) => {
      const hit = cache.get(id);
      if (hit) return hit;
      const piece = tok.id_to_token(id);
      let bytes: Uint8Array;
      if (piece === undefined) bytes = new Uint8Array();
      else if (specials.has(id)) bytes = new TextEncoder().encode(piece);
      else bytes = Uint8Array.from([...piece].map((ch) => u2b.get(ch) ?? 0x3f));
      let complete = true;
      try {
        decoder.decode(bytes);
      } catch {
        complete = false;
      }
      const info: TokenInfo = { id, text: tok.decode([id], { clean_up_tokenization_spaces: false }), bytes, complete };
      cache.set(id, info);
      return info;
    },
  };
}

/** How a token looks in a terminal: whitespace made visible, partial UTF-8 shown as bytes. */
export function displayToken(t: TokenInfo): string {
  return t.complete ? visibleWhitespace(t.text) : bytesForDisplay(t.bytes);
}

/** Valid UTF-8 runs as text, the pieces of split characters as <0x..> groups. */
function bytesForDisplay(b: Uint8Array): string {
  let out = '';
  let pending: string[] = [];
  const flush = () => {
    if (pending.length) out += `<${pending.join(' ')}>`;
    pending = [];
  };
  for (let i = 0; i < b.length;) {
    const lead = b[i];
    const len = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead >= 0xf0 && lead < 0xf5 ? 4 : 0;
    let ok = len > 0 && i + len <= b.length;
    for (let j = 1; ok && j < len; j++) ok = (b[i + j] & 0xc0) === 0x80;
    if (ok) {
      flush();
      out += visibleWhitespace(Buffer.from(b.subarray(i, i + len)).toString('utf8'));
      i += len;
    } else {
      pending.push('0x' + lead.toString(16).toUpperCase().padStart(2, '0'));
      i += 1;
    }
  }
  flush();
  return out;
}

function visibleWhitespace(text: string): string {
  return text.replace(/[\s\u0000-\u001f\u007f]/g, (ch) => {
    switch (ch) {
      case ' ': return '·';
      case '\n': return '↵';
      case '\t': return '⇥';
      case '\r': return '␍';
      default: return `<0x${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(2, '0')}>`;
    }
  });
}
