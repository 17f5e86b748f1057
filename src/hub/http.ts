import { LogitlensError } from '../errors.js';

/** Everything a request needs to know; the token lives only here and in the Authorization header. */
export interface HubContext {
  endpoint: string; // no trailing slash
  repoId: string;
  revision: string;
  token: string | undefined;
  signal: AbortSignal | undefined;
  headTimeoutMs: number;
}

/** The server could not be reached at all; the caller may fall back to the cache. */
export class HubUnreachableError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = 'HubUnreachableError';
  }
}

export interface FileMeta {
  commit: string;
  etag: string;
  size: number;
  /** Where to GET the bytes: the CDN for LFS files, else the resolve URL itself. */
  url: string;
  /** The etag is a sha256 of the content (LFS), so the bytes can be verified. */
  sha256: string | null;
}

const MAX_REDIRECTS = 5;

export function resolveUrl(ctx: HubContext, revision: string, file: string): string {
  // Revisions like refs/pr/1 must be one path segment, as huggingface_hub quotes them.
  const rev = encodeURIComponent(revision);
  const f = file.split('/').map(encodeURIComponent).join('/');
  return `${ctx.endpoint}/${ctx.repoId}/resolve/${rev}/${f}`;
}

/** The token goes only to the Hub itself, never to a CDN on another origin. */
export function headersFor(ctx: HubContext, url: string, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'logitlens', ...extra };
  if (ctx.token && new URL(url).origin === new URL(ctx.endpoint).origin) h.Authorization = `Bearer ${ctx.token}`;
  return h;
}

function describeCause(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
}

export async function hubFetch(
  ctx: HubContext,
  url: string,
  init: { method: 'HEAD' | 'GET'; headers: Record<string, string>; signal?: AbortSignal },
): Promise<Response> {
  try {
    return await fetch(url, { method: init.method, headers: init.headers, redirect: 'manual', signal: init.signal });
  } catch (e) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    // only a failed connection means "unreachable"; anything else (a bad header value, say) is
    // our own request's fault, and its message may quote the Authorization header: never show it
    const cause = (e as { cause?: unknown }).cause;
    if (e instanceof TypeError && e.message === 'fetch failed' && cause) throw new HubUnreachableError(describeCause(e));
    throw new LogitlensError(`the request to ${new URL(url).origin} could not be sent (${(e as Error).name}); check HF_ENDPOINT and HF_TOKEN`);
  }
}

function normalizeEtag(raw: string | null): string | null {
  if (!raw) return null;
  return raw.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** Maps a Hub error answer to a message that says what is wrong and what to do. */
export function hubHttpError(ctx: HubContext, res: Response, file: string, revision = ctx.revision): LogitlensError {
  const code = res.headers.get('x-error-code');
  const where = `${ctx.endpoint}`;
  const tokenNote = ctx.token ? 'a token was sent but was not accepted' : 'no token was sent';
  if (code === 'RepoNotFound') {
    return new LogitlensError(
      `repository ${ctx.repoId} not found on ${where} (check the spelling, or log in with HF_TOKEN if private; ${tokenNote})`,
    );
  }
  if (code === 'GatedRepo' || code === 'DisabledRepo' || res.status === 401 || res.status === 403) {
    return new LogitlensError(
      `repo ${ctx.repoId} is gated or private (HTTP ${res.status}, ${tokenNote}): accept its terms on the Hub and set HF_TOKEN to a token that can read it`,
    );
  }
  if (code === 'RevisionNotFound') {
    return new LogitlensError(
      `revision "${revision}" not found in ${ctx.repoId}; use an existing branch, tag or full commit sha (default: main)`,
    );
  }
  if (code === 'EntryNotFound' || res.status === 404) {
    const hint = file === 'model.safetensors' ? '; logitlens needs safetensors weights: pick a revision that has them' : '';
    return new LogitlensError(`file ${file} not found in ${ctx.repoId}@${revision}${hint}`);
  }
  if (res.status === 429) {
    return new LogitlensError(`${where} is rate-limiting requests (HTTP 429); wait a minute and retry, or set HF_TOKEN`);
  }
  return new LogitlensError(
    `${where} answered HTTP ${res.status} for ${ctx.repoId}/${file}@${revision}; retry later, or check HF_ENDPOINT`,
  );
}

/**
 * HEAD on the resolve URL, as huggingface_hub's get_hf_file_metadata: relative redirects
 * (renamed repos) are followed, absolute ones (the CDN for LFS files) are not, because the
 * LFS metadata is on the redirect itself.
 * Returns null for EntryNotFound so callers can treat optional files as absent.
 */
export async function headFile(ctx: HubContext, revision: string, file: string): Promise<FileMeta | null> {
  let url = resolveUrl(ctx, revision, file);
  let res: Response | undefined;
  for (let hop = 0; ; hop++) {
    const signals = [AbortSignal.timeout(ctx.headTimeoutMs)];
    if (ctx.signal) signals.push(ctx.signal);
    res = await hubFetch(ctx, url, { method: 'HEAD', headers: headersFor(ctx, url), signal: AbortSignal.any(signals) });
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc && !/^[a-z][a-z0-9+.-]*:/i.test(loc)) {
      if (hop >= MAX_REDIRECTS) throw new LogitlensError(`too many redirects for ${file} from ${ctx.endpoint}; check HF_ENDPOINT`);
      url = new URL(loc, url).toString();
      continue;
    }
    break;
  }
  if (res.status === 404 && res.headers.get('x-error-code') === 'EntryNotFound') return null;
  if (res.status >= 400) throw hubHttpError(ctx, res, file, revision);

  const commit = res.headers.get('x-repo-commit');
  const linked = normalizeEtag(res.headers.get('x-linked-etag'));
  const etag = linked ?? normalizeEtag(res.headers.get('etag'));
  const sizeHeader = res.headers.get('x-linked-size') ?? res.headers.get('content-length');
  const size = sizeHeader === null ? NaN : Number(sizeHeader);
  if (!commit || !/^[0-9a-f]{40}$/.test(commit) || !etag || !/^[A-Za-z0-9._-]+$/.test(etag) || !Number.isSafeInteger(size)) {
    throw new LogitlensError(
      `${ctx.endpoint} did not send the commit, ETag and size of ${ctx.repoId}/${file} (HTTP ${res.status}); is HF_ENDPOINT a Hugging Face Hub? Retry later if it is`,
    );
  }
  const loc = res.headers.get('location');
  const downloadUrl = res.status >= 300 && res.status < 400 && loc ? new URL(loc, url).toString() : url;
  return { commit, etag, size, url: downloadUrl, sha256: /^[0-9a-f]{64}$/.test(etag) ? etag : null };
}
