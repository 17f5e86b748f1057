import { ModelUnavailableError } from '../errors.js';
import { DEMO_ID, resolveModel } from '../model/resolve.js';
import { LoadedModel } from '../model/runtime.js';

/** Messages for people go to stderr; stdout carries data only. */
export function note(msg: string): void {
  process.stderr.write(`logitlens: ${msg}\n`);
}

/** stdout writes that respect back-pressure; a closed pipe (| head) is handled in main(). */
export function write(s: string): Promise<void> {
  return new Promise((res) => {
    if (process.stdout.write(s)) res();
    else process.stdout.once('drain', res);
  });
}

/** Ctrl-C aborts downloads cleanly (partial files stay resumable) instead of killing mid-write. */
export const interrupt = new AbortController();

export interface OpenOptions {
  threads?: number;
  revision?: string;
  /** --model was not given: the default may fall back to the demo model when offline */
  implicit?: boolean;
  mode?: 'single' | 'batch';
}

export async function openModel(spec: string, o: OpenOptions = {}): Promise<{ model: LoadedModel; id: string }> {
  const opts = {
    revision: o.revision,
    hub: { signal: interrupt.signal },
    onBuild: (what: string) => note(`building the ONNX graph for ${what} (first run; cached afterwards)…`),
  };
  let resolved;
  try {
    resolved = await resolveModel(spec, opts);
  } catch (e) {
    // only the implicit default falls back: an explicit --model gpt2 means exactly that
    if (!(o.implicit && e instanceof ModelUnavailableError)) throw e;
    note(`warning: ${spec} is not available (${e.reason === 'offline' ? 'HF_HUB_OFFLINE is set' : 'no network'}) and not cached; ` +
      `showing the built-in demo model instead (a small GPT-2 trained on the Brown corpus). ` +
      `To use GPT-2, run "logitlens pull gpt2" once with network access`);
    resolved = await resolveModel(DEMO_ID, { ...opts, revision: undefined });
  }
  const model = await LoadedModel.open(resolved.dir, { threads: o.threads, mode: o.mode ?? 'single' });
  return { model, id: resolved.id };
}
