import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LogitlensError } from '../errors.js';
import { FileMeta, HubContext, HubUnreachableError, headersFor, hubFetch, hubHttpError } from './http.js';
import { withLock } from './lock.js';
import { FileProgress, TextSink } from './progress.js';

const MAX_ATTEMPTS = 3;
const STALL_MS = 30_000;
const MAX_REDIRECTS = 5;

export function diskError(e: unknown, where: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new LogitlensError(`disk full while writing ${where}; free space or set HF_HUB_CACHE to a folder on a bigger disk`);
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new LogitlensError(`cannot write ${where} (${code}); fix its permissions or set HF_HUB_CACHE to a writable folder`);
  }
  return e as Error;
}

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

async function sha256Of(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(p, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** GET that follows redirects itself, so the Authorization header is dropped on other origins. */
async function getFollowing(ctx: HubContext, url: string, range: number, signal: AbortSignal): Promise<Response> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const extra: Record<string, string> = range > 0 ? { Range: `bytes=${range}-` } : {};
    const res = await hubFetch(ctx, current, { method: 'GET', headers: headersFor(ctx, current, extra), signal });
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      await res.body?.cancel();
      current = new URL(loc, current).toString();
      continue;
    }
    return res;
  }
  throw new LogitlensError(`too many redirects downloading from ${ctx.endpoint}; retry later or check HF_ENDPOINT`);
}

class Interrupted extends Error {}

/**
 * One attempt: appends to `incomplete` from its current size. Resolves when the body ended;
 * throws Interrupted when the connection broke (worth another attempt).
 */
async function attempt(
  ctx: HubContext,
  meta: FileMeta,
  file: string,
  incomplete: string,
  sink: TextSink | null,
): Promise<void> {
  let have = fileSize(incomplete);
  if (have > meta.size) {
    fs.rmSync(incomplete, { force: true });
    have = 0;
  }
  if (have === meta.size) return;

  // A stall (server alive but silent) counts as a broken connection.
  const stall = new AbortController();
  let timer = setTimeout(() => stall.abort(), STALL_MS);
  const signals = [stall.signal];
  if (ctx.signal) signals.push(ctx.signal);
  const signal = AbortSignal.any(signals);
  try {
    let res: Response;
    try {
      res = await getFollowing(ctx, meta.url, have, signal);
    } catch (e) {
      if (e instanceof HubUnreachableError) throw new Interrupted(e.detail);
      throw e;
    }
    if (res.status === 416) {
      // Our partial file does not fit what the server has: start over.
      await res.body?.cancel();
      fs.rmSync(incomplete, { force: true });
      throw new Interrupted('server rejected the resume range');
    }
    if (res.status >= 400) {
      await res.body?.cancel();
      throw hubHttpError(ctx, res, file);
    }
    let append = have > 0;
    if (append && res.status === 206) {
      const cr = res.headers.get('content-range') ?? '';
      if (!cr.startsWith(`bytes ${have}-`)) {
        // a partial body from some other offset cannot be placed anywhere safely: start over
        await res.body?.cancel();
        fs.rmSync(incomplete, { force: true });
        throw new Interrupted(`server answered the resume with an unexpected range (${cr || 'none'})`);
      }
    } else if (append) {
      // The server ignored Range and sent everything (200): restart from byte 0.
      append = false;
    }
    if (!append) have = 0;

    const progress = new FileProgress(sink, file, meta.size, have);
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(incomplete, append ? 'a' : 'w');
    } catch (e) {
      await res.body?.cancel();
      throw diskError(e, incomplete);
    }
    try {
      if (!res.body) throw new Interrupted('empty response body');
      try {
        for await (const chunk of res.body) {
          clearTimeout(timer);
          timer = setTimeout(() => stall.abort(), STALL_MS);
          try {
            await fh.write(chunk);
          } catch (e) {
            throw diskError(e, incomplete);
          }
          have += chunk.byteLength;
          progress.update(have);
        }
      } catch (e) {
        if (e instanceof LogitlensError) throw e;
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        progress.finish('interrupted');
        throw new Interrupted(stall.signal.aborted ? `no data for ${STALL_MS / 1000}s` : (e as Error).message);
      }
      try {
        await fh.sync();
      } catch (e) {
        throw diskError(e, incomplete);
      }
    } finally {
      await fh.close();
    }
    if (have < meta.size) throw new Interrupted(`connection closed after ${have} of ${meta.size} bytes`);
    progress.finish();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Makes sure blobs/<etag> holds the verified file. Bytes go to blobs/<etag>.incomplete and are
 * renamed into place only after size (and sha256 for LFS) check out, so a crash, Ctrl-C or
 * bad transfer never leaves a truncated file under the final name.
 */
export async function ensureBlob(
  ctx: HubContext,
  meta: FileMeta,
  file: string,
  blobsDir: string,
  locksDir: string,
  sink: TextSink | null,
): Promise<string> {
  const blob = path.join(blobsDir, meta.etag);
  if (fileSize(blob) === meta.size && fs.existsSync(blob)) return blob;
  try {
    fs.mkdirSync(blobsDir, { recursive: true });
  } catch (e) {
    throw diskError(e, blobsDir);
  }
  return withLock(path.join(locksDir, `${meta.etag}.lock`), ctx.signal, async () => {
    // Another process may have finished it while we waited for the lock.
    if (fs.existsSync(blob) && fileSize(blob) === meta.size) return blob;
    const incomplete = `${blob}.incomplete`;
    let lastReason = '';
    let ok = false;
    for (let i = 1; i <= MAX_ATTEMPTS && !ok; i++) {
      try {
        await attempt(ctx, meta, file, incomplete, sink);
        ok = true;
      } catch (e) {
        if (!(e instanceof Interrupted)) throw e;
        lastReason = e.message;
        if (i < MAX_ATTEMPTS) await new Promise((r) => setTimeout(r, 200 * i));
      }
    }
    if (!ok) {
      throw new LogitlensError(
        `download of ${file} from ${ctx.repoId} was interrupted ${MAX_ATTEMPTS} times (${lastReason}); ` +
          `${fileSize(incomplete)} bytes are kept, run the same command again to resume`,
      );
    }
    const size = fileSize(incomplete);
    if (size !== meta.size) {
      fs.rmSync(incomplete, { force: true });
      throw new LogitlensError(`size mismatch for ${file}: expected ${meta.size} bytes, got ${size}; retry the download`);
    }
    if (meta.sha256) {
      const got = await sha256Of(incomplete);
      if (got !== meta.sha256) {
        fs.rmSync(incomplete, { force: true });
        throw new LogitlensError(
          `checksum mismatch for ${file} from ${ctx.repoId}: expected sha256 ${meta.sha256}, got ${got}; the partial file was deleted, retry the download`,
        );
      }
    }
    try {
      fs.renameSync(incomplete, blob);
    } catch (e) {
      throw diskError(e, blob);
    }
    return blob;
  });
}
