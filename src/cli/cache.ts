import type { Command } from 'commander';
import Table from 'cli-table3';
import { UsageError } from '../errors.js';
import { hubCacheDir, isHubRepoId, listCachedHubModels, removeCachedHubModel } from '../hub/index.js';
import { listBuiltModels, removeBuiltModel, resolveModel } from '../model/resolve.js';
import { formatBytes } from '../hub/progress.js';

interface Io {
  note: (msg: string) => void;
  write: (s: string) => Promise<void>;
  signal: AbortSignal;
}

export interface CachedModelRow {
  id: string;
  revision: string | null;
  commit: string | null;
  /** bytes in the Hugging Face cache (shared with Python) */
  hf_bytes: number;
  /** bytes of logitlens' built ONNX */
  onnx_bytes: number;
  onnx_built: boolean;
}

/** One row per (model, commit) across both caches; `revision` lists every ref that points there. */
export function cachedModels(): CachedModelRow[] {
  const rows = new Map<string, CachedModelRow>();
  for (const m of listCachedHubModels()) {
    for (const r of m.revisions) {
      const key = `${m.repoId}@${r.commit}`;
      const row = rows.get(key);
      if (row) row.revision = [row.revision, r.ref].filter(Boolean).join(', ') || null;
      else rows.set(key, { id: m.repoId, revision: r.ref, commit: r.commit, hf_bytes: r.bytes, onnx_bytes: 0, onnx_built: false });
    }
  }
  for (const b of listBuiltModels()) {
    const key = `${b.id}@${b.commit ?? b.key}`;
    const row = rows.get(key) ?? { id: b.id, revision: b.revision ?? null, commit: b.commit ?? null, hf_bytes: 0, onnx_bytes: 0, onnx_built: false };
    row.onnx_bytes += b.bytes;
    row.onnx_built = true;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export function registerCacheCommands(program: Command, io: Io): void {
  program
    .command('pull')
    .description('download a model from the Hub (if needed) and build its ONNX graph, without analyzing anything')
    .argument('<model>', 'Hub repo id, e.g. gpt2, distilgpt2, openai-community/gpt2')
    .option('--revision <rev>', 'branch, tag or commit (default main)')
    .addHelpText('after', '\nExample:\n  $ logitlens pull gpt2-medium\n  $ HF_TOKEN=hf_… logitlens pull my-org/private-gpt2')
    .action(async (model: string, o: { revision?: string }) => {
      const r = await resolveModel(model, {
        revision: o.revision,
        refresh: true,
        hub: { signal: io.signal },
        onBuild: (what) => io.note(`building the ONNX graph for ${what}…`),
      });
      io.note(`${model}${r.commit ? `@${r.commit.slice(0, 10)}` : ''} is ready${r.built ? ' (built now)' : ''}`);
      await io.write(`${r.dir}\n`);
    });

  program
    .command('models')
    .description('list cached models: id, revision, size on disk, whether the ONNX graph is built')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const rows = cachedModels();
      if (o.json) {
        await io.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      if (rows.length === 0) {
        io.note(`no cached models (Hugging Face cache: ${hubCacheDir()}); fetch one with: logitlens pull gpt2`);
        return;
      }
      const t = new Table({ head: ['model', 'revision', 'commit', 'HF cache', 'ONNX', 'built'], style: { head: [], border: [], compact: true } });
      for (const r of rows) {
        t.push([r.id, r.revision ?? '-', r.commit ? r.commit.slice(0, 10) : '-', r.hf_bytes ? formatBytes(r.hf_bytes) : '-', r.onnx_bytes ? formatBytes(r.onnx_bytes) : '-', r.onnx_built ? 'yes' : 'no']);
      }
      await io.write(t.toString() + '\n');
    });

  program
    .command('rm')
    .description("remove logitlens' built ONNX for a model; the shared Hugging Face cache stays unless --hf-cache")
    .argument('<model>', 'Hub repo id (or the checkpoint folder a build came from)')
    .option('--hf-cache', "also delete the model from the Hugging Face cache (shared with Python's huggingface_hub)")
    .action(async (model: string, o: { hfCache?: boolean }) => {
      if (o.hfCache && !isHubRepoId(model)) throw new UsageError(`--hf-cache needs a Hub repo id; ${model} is not one`);
      const builds = removeBuiltModel(model);
      const hf = o.hfCache ? removeCachedHubModel(model) : false;
      if (builds === 0 && !hf) {
        io.note(`nothing cached for ${model}${o.hfCache ? '' : ' in the logitlens cache (add --hf-cache to clear the Hugging Face cache too)'}`);
        return;
      }
      io.note(`removed ${builds} ONNX build${builds === 1 ? '' : 's'} of ${model}${hf ? ' and its Hugging Face cache entry' : ''}`);
    });
}
