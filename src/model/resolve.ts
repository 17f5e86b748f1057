import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../util/fs.js';
import { LogitlensError, UsageError } from '../errors.js';
import { isHubRepoId, resolveHubModel, type HubOptions } from '../hub/index.js';
import { COMMIT_RE } from '../hub/repo-id.js';
import { builtModelDir, cacheRoot, isCompleteBuild, META_FILE, prepareModelFolder, type BuildMeta, type PreparedModel } from './store.js';

export interface ResolvedModel extends PreparedModel {
  /** what JSON reports as model.id: the path as given, or the Hub repo id */
  id: string;
  source: 'path' | 'hub';
  /** Hub commit, when the model came from the Hub */
  commit?: string;
}

export interface ResolveOptions {
  revision?: string;
  /** logitlens cache root (default $XDG_CACHE_HOME/logitlens) */
  cacheDir?: string;
  hub?: HubOptions;
  /** ask the Hub even when a built model for this revision is cached (pull) */
  refresh?: boolean;
  onBuild?: (what: string) => void;
}


/** The small model shipped in the package (models/demo), run by `--model demo` and as the offline fallback. */
export const DEMO_ID = 'demo';
export const DEMO_DIR = fileURLToPath(new URL('../../../models/demo', import.meta.url));

function flatName(repoId: string): string {
  return repoId.replace(/\//g, '--');
}

/** logitlens' own record of which commit a Hub revision resolved to, so cached runs need no network. */
function refPath(root: string, repoId: string, revision: string): string {
  return join(root, 'hub', flatName(repoId), 'refs', encodeURIComponent(revision));
}

function hubKey(repoId: string, commit: string): string {
  return `hub--${flatName(repoId)}--${commit}`;
}

/**
 * Turn a --model value into a ready ONNX folder. Order: a local path; a model from the Hub
 * already built in our cache (no network); the Hugging Face cache; a download.
 */
export async function resolveModel(spec: string, o: ResolveOptions = {}): Promise<ResolvedModel> {
  const root = o.cacheDir ?? cacheRoot();
  const local = resolve(spec);
  if (spec === DEMO_ID && !existsSync(local)) {
    if (!existsSync(DEMO_DIR)) throw new LogitlensError(`the demo model is missing from this installation (${DEMO_DIR}); reinstall logitlens`);
    const prepared = prepareModelFolder(DEMO_DIR, { cacheDir: root, onBuild: () => o.onBuild?.(DEMO_ID) });
    return { ...prepared, id: DEMO_ID, source: 'path' };
  }
  if (existsSync(local)) {
    if (o.revision) throw new UsageError(`--revision applies to Hub models; ${spec} is a local folder`);
    const prepared = prepareModelFolder(local, { cacheDir: root, onBuild: () => o.onBuild?.(spec) });
    return { ...prepared, id: spec, source: 'path' };
  }
  if (/^(\.{1,2}|~)?\//.test(spec) || !isHubRepoId(spec)) {
    throw new LogitlensError(`model path ${spec} does not exist; --model takes a folder (Hugging Face GPT-2 checkpoint or logitlens export) or a Hub repo id such as gpt2 or openai-community/gpt2`);
  }
  const revision = o.revision ?? 'main';
  if (!o.refresh) {
    const commit = COMMIT_RE.test(revision) ? revision : readRef(root, spec, revision);
    if (commit) {
      const dir = builtModelDir(hubKey(spec, commit), root);
      if (isCompleteBuild(dir)) {
        const prepared = prepareModelFolder(dir, { cacheDir: root });
        return { ...prepared, id: spec, source: 'hub', commit };
      }
    }
  }
  const hub = await resolveHubModel(spec, { ...o.hub, revision });
  const prepared = prepareModelFolder(hub.snapshotDir, {
    cacheDir: root,
    key: hubKey(spec, hub.commit),
    origin: { repo: spec, revision, commit: hub.commit },
    onBuild: () => o.onBuild?.(spec),
  });
  if (!COMMIT_RE.test(revision)) writeRef(root, spec, revision, hub.commit);
  return { ...prepared, id: spec, source: 'hub', commit: hub.commit };
}

function readRef(root: string, repoId: string, revision: string): string | undefined {
  try {
    const c = readFileSync(refPath(root, repoId, revision), 'utf8').trim();
    return COMMIT_RE.test(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

function writeRef(root: string, repoId: string, revision: string, commit: string): void {
  const p = refPath(root, repoId, revision);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileAtomic(p, commit);
}

export interface BuiltModelEntry {
  key: string;
  dir: string;
  /** Hub repo id, or the checkpoint folder it was built from */
  id: string;
  revision?: string;
  commit?: string;
  bytes: number;
  builtAt: string;
}

/** Models built into the logitlens cache. */
export function listBuiltModels(cacheDir?: string): BuiltModelEntry[] {
  const models = join(cacheDir ?? cacheRoot(), 'models');
  if (!existsSync(models)) return [];
  const out: BuiltModelEntry[] = [];
  for (const key of readdirSync(models)) {
    const dir = join(models, key);
    if (key.includes('.tmp-') || !isCompleteBuild(dir)) continue;
    const meta = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as BuildMeta;
    const bytes = readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
    out.push({
      key, dir, id: meta.origin?.repo ?? meta.source, revision: meta.origin?.revision, commit: meta.origin?.commit, bytes, builtAt: meta.built_at,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** Delete what logitlens built for a Hub model (every commit) and its refs; returns how many builds went. */
export function removeBuiltModel(repoId: string, cacheDir?: string): number {
  const root = cacheDir ?? cacheRoot();
  const asPath = resolve(repoId);
  const builds = listBuiltModels(root).filter((m) => m.id === repoId || m.id === asPath);
  for (const b of builds) rmSync(b.dir, { recursive: true, force: true });
  rmSync(join(root, 'hub', flatName(repoId)), { recursive: true, force: true });
  return builds.length;
}
