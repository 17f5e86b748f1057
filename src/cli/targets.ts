import { UsageError } from '../errors.js';
import type { LoadedModel } from '../model/runtime.js';

/** --target texts (first token of each) and --target-id values as token ids, checked against the vocabulary. */
export function resolveTargets(model: LoadedModel, texts: string[], ids: number[], note: (msg: string) => void): number[] {
  const V = model.config.vocab_size;
  const targets: number[] = [];
  for (const text of texts) {
    const tokens = model.tokenizer.encode(text);
    if (tokens.length === 0) throw new UsageError(`--target "${text}" encodes to no tokens; give a token such as " Paris"`);
    if (tokens.length > 1) {
      const shown = tokens.map((t) => JSON.stringify(model.tokenizer.token(t).text)).join(' + ');
      note(`--target ${JSON.stringify(text)} is ${tokens.length} tokens (${shown}); using the first (multi-token targets are not supported yet)`);
    }
    targets.push(tokens[0]);
  }
  for (const t of ids) {
    if (t < 0 || t >= V) throw new UsageError(`--target-id ${t} is outside the vocabulary (0..${V - 1})`);
    targets.push(t);
  }
  return targets;
}
