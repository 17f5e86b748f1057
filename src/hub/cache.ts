import { writeFileAtomic } from '../util/fs.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LogitlensError } from '../errors.js';
import { assertHubRepoId, COMMIT_RE } from './repo-id.js';

const TRUE_VALUES = new Set(['1', 'true', 'yes', 'on']);

export function envFlag(value: string | undefined): boolean {
  return value !== undefined && TRUE_VALUES.has(value.trim().toLowerCase());
}

function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

/** huggingface_hub's HF_HOME: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HOME) return path.resolve(expandHome(env.HF_HOME));
  const xdg = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.resolve(xdg, 'huggingface');
}

/**
 * The cache folder shared with huggingface_hub (Python), so models fetched by either tool are
 * reused by the other. Same precedence as huggingface_hub's constants.py.
 */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return path.resolve(expandHome(explicit));
  return path.join(hfHome(env), 'hub');
}

export function repoFolderName(repoId: string): string {
  return `models--${repoId.split('/').join('--')}`;
}

export interface RepoPaths {
  root: string;
  blobs: string;
  refs: string;
  snapshots: string;
  noExist: string;
  locks: string;
}

export function repoPaths(cacheDir: string, repoId: string): RepoPaths {
  const folder = repoFolderName(repoId);
  const root = path.join(cacheDir, folder);
  return {
    root,
    blobs: path.join(root, 'blobs'),
    refs: path.join(root, 'refs'),
    snapshots: path.join(root, 'snapshots'),
    noExist: path.join(root, '.no_exist'),
    locks: path.join(cacheDir, '.locks', folder),
  };
}

export function readRef(paths: RepoPaths, revision: string): string | null {
  try {
    const commit = fs.readFileSync(path.join(paths.refs, revision), 'utf8').trim();
    return COMMIT_RE.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

/** Written via rename so a concurrent reader never sees an empty ref. */
export function writeRef(paths: RepoPaths, revision: string, commit: string): void {
  if (readRef(paths, revision) === commit) return;
  const refPath = path.join(paths.refs, revision);
  fs.mkdirSync(path.dirname(refPath), { recursive: true });
  writeFileAtomic(refPath, commit);
}

export function snapshotDir(paths: RepoPaths, commit: string): string {
  return path.join(paths.snapshots, commit);
}

/** True when the snapshot entry exists and (being a symlink) points at an existing blob. */
export function snapshotHas(paths: RepoPaths, commit: string, file: string): boolean {
  try {
    return fs.statSync(path.join(paths.snapshots, commit, file)).isFile();
  } catch {
    return false;
  }
}

/**
 * Publishes a blob under snapshots/<commit>/<file> as a relative symlink, the layout
 * huggingface_hub uses, so the cache folder can be moved and shared with Python.
 * Another process may have created the same link first: that is fine when it agrees.
 */
export function linkSnapshotFile(paths: RepoPaths, commit: string, file: string, blobPath: string): void {
  const linkPath = path.join(paths.snapshots, commit, file);
  fs.mkdirSync(path.dirname(linkPath), { recursive: true });
  const target = path.relative(path.dirname(linkPath), blobPath);
  try {
    fs.symlinkSync(target, linkPath);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      try {
        if (fs.readlinkSync(linkPath) === target) return;
      } catch {
        // A regular file (copy fallback, or a hand-made cache): replace it below.
      }
    } else if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') {
      throw e;
    }
    // File systems without symlinks (some Windows setups, FAT): fall through to a copy.
    const tmp = `${linkPath}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      fs.symlinkSync(target, tmp);
    } catch {
      fs.copyFileSync(blobPath, tmp);
    }
    fs.renameSync(tmp, linkPath);
  }
}

/** Records that a file is absent at a commit, as huggingface_hub does, so later lookups can skip it. */
export function markNoExist(paths: RepoPaths, commit: string, file: string): void {
  try {
    const p = path.join(paths.noExist, commit, file);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.closeSync(fs.openSync(p, 'a'));
  } catch {
    // Only an optimisation hint; never worth failing a download over.
  }
}

export interface CachedRevision {
  ref: string | null;
  commit: string;
  dir: string;
  bytes: number;
}

function listRefs(refsDir: string, prefix = ''): Array<{ ref: string; commit: string }> {
  const out: Array<{ ref: string; commit: string }> = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(refsDir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const full = path.join(refsDir, e.name);
    const name = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listRefs(full, name));
    else if (e.isFile()) {
      const commit = fs.readFileSync(full, 'utf8').trim();
      if (COMMIT_RE.test(commit)) out.push({ ref: name, commit });
    }
  }
  return out;
}

function dirBytes(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    try {
      const st = fs.statSync(full);
      total += st.isDirectory() ? dirBytes(full) : st.size;
    } catch {
      // Dangling link (blob deleted by hand): counts as nothing.
    }
  }
  return total;
}

/** Models in the cache with their snapshots; one entry per (ref, snapshot), `ref: null` for detached snapshots. */
export function listCachedHubModels(
  cacheDir: string = hubCacheDir(),
): Array<{ repoId: string; revisions: CachedRevision[] }> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(cacheDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const models: Array<{ repoId: string; revisions: CachedRevision[] }> = [];
  for (const e of entries) {
    if (!e.isDirectory() || !e.name.startsWith('models--')) continue;
    const repoId = e.name.slice('models--'.length).split('--').join('/');
    const paths = repoPaths(cacheDir, repoId);
    const refs = listRefs(paths.refs);
    let commits: string[] = [];
    try {
      commits = fs.readdirSync(paths.snapshots).filter((c) => COMMIT_RE.test(c));
    } catch {
      // A model folder without snapshots (download never finished) has no revisions.
    }
    const revisions: CachedRevision[] = [];
    for (const commit of commits.sort()) {
      const dir = snapshotDir(paths, commit);
      const bytes = dirBytes(dir);
      const pointing = refs.filter((r) => r.commit === commit).map((r) => r.ref).sort();
      if (pointing.length === 0) revisions.push({ ref: null, commit, dir, bytes });
      for (const ref of pointing) revisions.push({ ref, commit, dir, bytes });
    }
    models.push({ repoId, revisions });
  }
  return models.sort((a, b) => a.repoId.localeCompare(b.repoId));
}

/** Deletes models--org--name (and its lock folder). Returns false when it was not cached. */
export function removeCachedHubModel(repoId: string, cacheDir: string = hubCacheDir()): boolean {
  assertHubRepoId(repoId);
  const paths = repoPaths(cacheDir, repoId);
  const existed = fs.existsSync(paths.root);
  try {
    fs.rmSync(paths.root, { recursive: true, force: true });
    fs.rmSync(paths.locks, { recursive: true, force: true });
  } catch (e) {
    throw new LogitlensError(
      `could not delete ${paths.root}: ${(e as Error).message}; check its permissions or delete it by hand`,
    );
  }
  return existed;
}
