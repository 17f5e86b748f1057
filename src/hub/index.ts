import fs from 'node:fs';
import path from 'node:path';
import { LogitlensError, ModelUnavailableError, UsageError } from '../errors.js';
import {
  envFlag,
  hfHome,
  hubCacheDir,
  linkSnapshotFile,
  markNoExist,
  readRef,
  repoPaths,
  RepoPaths,
  snapshotDir,
  snapshotHas,
  writeRef,
} from './cache.js';
import { ensureBlob } from './download.js';
import { FileMeta, headFile, HubContext, HubUnreachableError } from './http.js';
import { TextSink } from './progress.js';
import { assertHubRepoId, COMMIT_RE } from './repo-id.js';

export { hubCacheDir, listCachedHubModels, removeCachedHubModel } from './cache.js';
export type { CachedRevision } from './cache.js';
export { isHubRepoId } from './repo-id.js';
export type { TextSink } from './progress.js';

export interface HubOptions {
  /** Branch, tag or commit; default "main". */
  revision?: string;
  /** Default process.env.HF_ENDPOINT ?? "https://huggingface.co". */
  endpoint?: string;
  /** Default HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file `huggingface-cli login` writes. "" sends none. */
  token?: string;
  /** Default HF_HUB_OFFLINE in {1,true,yes,on}. */
  offline?: boolean;
  /** Default HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Progress lines on `stderr`; default: whether `stderr` is a TTY. */
  progress?: boolean;
  /** Aborting rejects with the signal's reason; partial downloads are kept for resuming. */
  signal?: AbortSignal;
  /** Where progress and notes go; default process.stderr. Never stdout. */
  stderr?: TextSink;
}

export interface ResolvedHubModel {
  repoId: string;
  revision: string;
  commit: string;
  snapshotDir: string;
  files: string[];
}

const CONFIG = 'config.json';
const WEIGHTS = 'model.safetensors';
const TOKENIZER = 'tokenizer.json';
const BPE_FILES = ['vocab.json', 'merges.txt'];

function defaultToken(env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return checkedToken(fromEnv.trim(), env.HF_TOKEN ? 'HF_TOKEN' : 'HUGGING_FACE_HUB_TOKEN');
  const file = env.HF_TOKEN_PATH || path.join(hfHome(env), 'token');
  let t: string;
  try {
    t = fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
  return t ? checkedToken(t, file) : undefined;
}

/** A token with spaces or control characters would end up quoted in an HTTP error: refuse it unseen. */
function checkedToken(token: string, source: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new UsageError(`the Hub token from ${source} contains spaces, line breaks or non-ASCII characters; set it to the token alone (hf_…)`);
  }
  return token;
}

/** Throws unless the config describes a GPT-2-family model; checked before fetching weights. */
function checkConfig(configPath: string, repoId: string): void {
  let cfg: unknown;
  try {
    cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  } catch (e) {
    throw new LogitlensError(
      `config.json of ${repoId} is not valid JSON (${(e as Error).message}); delete the cached copy with \`logitlens rm --hf-cache ${repoId}\` and retry`,
    );
  }
  const c = (cfg && typeof cfg === 'object' ? cfg : {}) as Record<string, unknown>;
  if (c.model_type === 'gpt2') return;
  const shaped = ['n_layer', 'n_embd', 'n_head', 'vocab_size'].every((k) => typeof c[k] === 'number');
  if (shaped && c.model_type === undefined) return;
  const mt = typeof c.model_type === 'string' ? c.model_type : 'missing';
  throw new LogitlensError(
    `${repoId} is not a GPT-2 model (model_type ${mt}); logitlens supports GPT-2-family checkpoints such as openai-community/gpt2 or distilbert/distilgpt2`,
  );
}

/** The needed files if this snapshot has all of them, else null. */
function completeSnapshot(paths: RepoPaths, commit: string): string[] | null {
  if (!snapshotHas(paths, commit, CONFIG) || !snapshotHas(paths, commit, WEIGHTS)) return null;
  if (snapshotHas(paths, commit, TOKENIZER)) return [CONFIG, TOKENIZER, WEIGHTS];
  if (BPE_FILES.every((f) => snapshotHas(paths, commit, f))) return [CONFIG, ...BPE_FILES, WEIGHTS];
  return null;
}

function fromCache(paths: RepoPaths, repoId: string, revision: string): ResolvedHubModel | null {
  const commit = COMMIT_RE.test(revision) ? revision : readRef(paths, revision);
  if (!commit) return null;
  const files = completeSnapshot(paths, commit);
  if (!files) return null;
  const dir = snapshotDir(paths, commit);
  checkConfig(path.join(dir, CONFIG), repoId);
  return { repoId, revision, commit, snapshotDir: dir, files };
}

async function fetchFile(
  ctx: HubContext,
  paths: RepoPaths,
  meta: FileMeta,
  file: string,
  sink: TextSink | null,
): Promise<void> {
  const blob = await ensureBlob(ctx, meta, file, paths.blobs, paths.locks, sink);
  linkSnapshotFile(paths, meta.commit, file, blob);
}

async function resolveOnline(
  ctx: HubContext,
  paths: RepoPaths,
  sink: TextSink | null,
): Promise<ResolvedHubModel> {
  const configMeta = await headFile(ctx, ctx.revision, CONFIG);
  if (!configMeta) throw new LogitlensError(`file ${CONFIG} not found in ${ctx.repoId}@${ctx.revision}; is it a transformers model repo?`);
  const commit = configMeta.commit;
  const dir = snapshotDir(paths, commit);
  const finish = (files: string[]): ResolvedHubModel => {
    if (ctx.revision !== commit) writeRef(paths, ctx.revision, commit);
    return { repoId: ctx.repoId, revision: ctx.revision, commit, snapshotDir: dir, files };
  };

  // A commit's content never changes, so a complete snapshot needs no further requests.
  const cached = completeSnapshot(paths, commit);
  if (cached) {
    checkConfig(path.join(dir, CONFIG), ctx.repoId);
    return finish(cached);
  }

  if (!snapshotHas(paths, commit, CONFIG)) await fetchFile(ctx, paths, configMeta, CONFIG, sink);
  checkConfig(path.join(dir, CONFIG), ctx.repoId);

  // Later files are asked for by commit, so a branch moving mid-download cannot mix versions.
  const need = async (file: string, optional: boolean): Promise<boolean> => {
    if (snapshotHas(paths, commit, file)) return true;
    const meta = await headFile(ctx, commit, file);
    if (!meta) {
      if (optional) {
        markNoExist(paths, commit, file);
        return false;
      }
      const hint = file === WEIGHTS ? '; logitlens needs safetensors weights: pick a revision that has them' : '';
      throw new LogitlensError(`file ${file} not found in ${ctx.repoId}@${ctx.revision}${hint}`);
    }
    await fetchFile(ctx, paths, meta, file, sink);
    return true;
  };

  const files = [CONFIG];
  if (await need(TOKENIZER, true)) files.push(TOKENIZER);
  else {
    for (const f of BPE_FILES) await need(f, false);
    files.push(...BPE_FILES);
  }
  await need(WEIGHTS, false);
  files.push(WEIGHTS);
  return finish(files);
}

/**
 * Finds or downloads the files logitlens needs for a GPT-2-family model on the Hugging Face Hub,
 * in the cache layout huggingface_hub uses (shared with Python). Offline, or when the Hub
 * cannot be reached, a complete cached snapshot of the revision is used instead.
 */
export async function resolveHubModel(repoId: string, opts: HubOptions = {}): Promise<ResolvedHubModel> {
  assertHubRepoId(repoId);
  const env = process.env;
  const revision = opts.revision ?? 'main';
  if (!revision || revision.includes('..') || revision.startsWith('/')) {
    throw new UsageError(`revision "${revision}" is not valid; use a branch, tag or full commit sha`);
  }
  const endpoint = (opts.endpoint ?? env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const offline = opts.offline ?? envFlag(env.HF_HUB_OFFLINE);
  const cacheDir = opts.cacheDir ?? hubCacheDir(env);
  const stderr: TextSink = opts.stderr ?? process.stderr;
  const sink = (opts.progress ?? stderr.isTTY === true) ? stderr : null;
  const paths = repoPaths(cacheDir, repoId);

  if (offline) {
    const hit = fromCache(paths, repoId, revision);
    if (hit) return hit;
    throw new ModelUnavailableError(
      `HF_HUB_OFFLINE is set (offline mode) and ${repoId}@${revision} is not in the cache at ${cacheDir}; ` +
        `unset HF_HUB_OFFLINE and run once with network access to download it`,
      'offline',
    );
  }
  if (COMMIT_RE.test(revision)) {
    const hit = fromCache(paths, repoId, revision);
    if (hit) return hit;
  }

  try {
    new URL(endpoint);
  } catch {
    throw new UsageError(`HF_ENDPOINT "${endpoint}" is not a URL; set it to e.g. https://huggingface.co`);
  }
  const etagTimeout = Number(env.HF_HUB_ETAG_TIMEOUT);
  const ctx: HubContext = {
    endpoint,
    repoId,
    revision,
    token: opts.token !== undefined ? opts.token || undefined : defaultToken(env),
    signal: opts.signal,
    headTimeoutMs: etagTimeout > 0 ? etagTimeout * 1000 : 10_000,
  };
  try {
    return await resolveOnline(ctx, paths, sink);
  } catch (e) {
    if (!(e instanceof HubUnreachableError)) throw e;
    const hit = fromCache(paths, repoId, revision);
    if (hit) {
      stderr.write(`note: cannot reach ${endpoint} (${e.detail}); using cached ${repoId}@${revision} (${hit.commit.slice(0, 8)})\n`);
      return hit;
    }
    throw new ModelUnavailableError(
      `cannot reach ${endpoint} (${e.detail}) and ${repoId}@${revision} is not in the cache; check your connection or set HF_ENDPOINT`,
      'unreachable',
    );
  }
}
