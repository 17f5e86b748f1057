import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pidAlive } from '../util/process.js';

/** The holder touches its lock this often, so a lock nobody touches for STALE_MS is abandoned. */
const REFRESH_MS = 5_000;
const STALE_MS = 60_000;
const POLL_MS = 100;

interface LockInfo {
  pid: number;
  host: string;
  nonce: string;
}

function readLock(lockPath: string): LockInfo | null {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
    if (v && typeof v === 'object' && 'pid' in v && 'host' in v && 'nonce' in v) {
      const o = v as Record<string, unknown>;
      if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.nonce === 'string') {
        return { pid: o.pid, host: o.host, nonce: o.nonce };
      }
    }
  } catch {
    // Missing, or caught between create and write: the caller decides from the mtime.
  }
  return null;
}


function isStale(lockPath: string, info: LockInfo | null): boolean {
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(lockPath).mtimeMs;
  } catch {
    return false; // gone already: the next O_EXCL attempt will tell
  }
  const age = Date.now() - mtimeMs;
  // A crashed or Ctrl-C'd holder on this machine is detectable right away; on a shared
  // network cache we can only trust the heartbeat.
  if (info && info.host === os.hostname() && !pidAlive(info.pid)) return true;
  if (!info) return age > 5_000;
  return age > STALE_MS;
}

/**
 * Moves the stale lock aside before deleting it, so that of two processes breaking the same
 * stale lock only one succeeds; if what we moved turns out to be a fresh lock (someone broke
 * and re-took it between our read and our rename) it is put back.
 */
function breakLock(lockPath: string, seen: LockInfo | null): void {
  const aside = `${lockPath}.${randomBytes(6).toString('hex')}.stale`;
  try {
    fs.renameSync(lockPath, aside);
  } catch {
    return;
  }
  const moved = readLock(aside);
  if (seen && moved && moved.nonce !== seen.nonce) {
    try {
      fs.linkSync(aside, lockPath);
    } catch {
      // Someone else holds it now; theirs wins and the moved one is dropped.
    }
  }
  fs.rmSync(aside, { force: true });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `fn` while holding an O_EXCL lock file, waiting for other holders (other processes,
 * or other calls in this one) to finish. Used per blob so concurrent pulls of one model
 * never write the same `.incomplete` file at once.
 */
export async function withLock<T>(lockPath: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  const me: LockInfo = { pid: process.pid, host: os.hostname(), nonce: randomBytes(12).toString('hex') };
  for (;;) {
    signal?.throwIfAborted();
    try {
      const fd = fs.openSync(lockPath, 'wx');
      try {
        fs.writeSync(fd, JSON.stringify(me));
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const info = readLock(lockPath);
    if (isStale(lockPath, info)) {
      breakLock(lockPath, info);
      continue;
    }
    await sleep(POLL_MS, signal);
  }
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      fs.utimesSync(lockPath, now, now);
    } catch {
      // If the lock vanished there is nothing useful to do here; release() copes.
    }
  }, REFRESH_MS);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    if (readLock(lockPath)?.nonce === me.nonce) fs.rmSync(lockPath, { force: true });
  }
}
