/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, speaking the parts of the protocol
 * huggingface_hub relies on: resolve URLs with X-Repo-Commit/ETag, LFS files redirected to a
 * CDN path with X-Linked-Etag/X-Linked-Size, Range requests, X-Error-Code on errors.
 * Knobs let tests break it in the ways real networks break.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/gpt2-tiny');
export const FAKE_COMMIT = '607a30d783dfa663caf39e06633721c8d4cfcd7e';
export const GATED_TOKEN = 'hf_FakeSecretTokenDoNotLeak0123456789';
const LFS_FILES = new Set(['model.safetensors']);
const FIXTURE_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt'];

export interface FakeRepo {
  commit: string;
  files: Map<string, Buffer>;
  /** Branches and tags that resolve to `commit`. */
  refs: Set<string>;
  gatedToken?: string;
}

export interface RequestRecord {
  method: string;
  /** Decoded path, e.g. /openai-community/gpt2/resolve/main/config.json or /cdn/<sha>. */
  path: string;
  /** Which listener answered: the Hub, or the CDN (only differs with cdnOtherOrigin). */
  server: 'hub' | 'cdn';
  range: string | undefined;
  authorization: string | undefined;
}

export interface DropKnob {
  /** Close the connection once this many bytes were sent in one response. */
  afterBytes: number;
  /** How many responses to break; Infinity for all. */
  times: number;
}

let fixtureCache: Map<string, Buffer> | undefined;

export function fixtureFiles(): Map<string, Buffer> {
  fixtureCache ??= new Map(FIXTURE_FILES.map((f) => [f, fs.readFileSync(path.join(FIXTURE_DIR, f))]));
  return new Map(fixtureCache);
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** The id git gives a blob; what the Hub sends as ETag for non-LFS files. */
export function gitBlobSha1(buf: Buffer): string {
  return createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  /** Old id → new id; answered with a relative 307 like the Hub does for renamed repos. */
  readonly renames = new Map<string, string>();
  readonly requests: RequestRecord[] = [];
  /** Per file name. */
  readonly drop = new Map<string, DropKnob>();
  /** File names whose GET bodies get one byte flipped. */
  readonly corrupt = new Set<string>();
  /** Answer Range requests with 200 and the whole file. */
  ignoreRange = false;
  /** Throttle bodies to this many bytes per second (0 = unthrottled). */
  bytesPerSecond = 0;
  /** Bytes of each file sent in GET bodies so far. */
  readonly sent = new Map<string, number>();

  private readonly servers: http.Server[] = [];
  endpoint = '';
  cdnBase = '';

  static async start(opts: { cdnOtherOrigin?: boolean } = {}): Promise<FakeHub> {
    const hub = new FakeHub();
    const files = fixtureFiles();
    hub.addRepo('openai-community/gpt2', files);
    const noTok = new Map(files);
    noTok.delete('tokenizer.json');
    hub.addRepo('org/no-tokenizer-json', noTok);
    const noWeights = new Map(files);
    noWeights.delete('model.safetensors');
    hub.addRepo('org/no-weights', noWeights);
    const bert = new Map(files);
    bert.set('config.json', Buffer.from(JSON.stringify({ model_type: 'bert', hidden_size: 64, num_hidden_layers: 2 })));
    hub.addRepo('org/bert', bert);
    hub.addRepo('org/gated', files, { gatedToken: GATED_TOKEN });
    hub.renames.set('old-org/gpt2', 'openai-community/gpt2');

    hub.endpoint = await hub.listen('hub');
    hub.cdnBase = opts.cdnOtherOrigin ? await hub.listen('cdn') : hub.endpoint;
    return hub;
  }

  addRepo(id: string, files: Map<string, Buffer>, opts: { commit?: string; gatedToken?: string } = {}): void {
    this.repos.set(id, {
      commit: opts.commit ?? FAKE_COMMIT,
      files,
      refs: new Set(['main', 'v1.0']),
      gatedToken: opts.gatedToken,
    });
  }

  count(pred: (r: RequestRecord) => boolean = () => true): number {
    return this.requests.filter(pred).length;
  }

  /** Stops listening and cuts open connections, so later requests are refused. */
  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    this.servers.length = 0;
  }

  private listen(role: 'hub' | 'cdn'): Promise<string> {
    const server = http.createServer((req, res) => {
      this.handle(role, req, res).catch(() => res.destroy());
    });
    this.servers.push(server);
    return new Promise((resolve) => {
      server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
    });
  }

  private findBySha(sha: string): { name: string; buf: Buffer } | undefined {
    for (const repo of this.repos.values()) {
      for (const [name, buf] of repo.files) if (LFS_FILES.has(name) && sha256(buf) === sha) return { name, buf };
    }
    return undefined;
  }

  private async handle(role: 'hub' | 'cdn', req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const rawPath = url.pathname;
    this.requests.push({
      method: req.method ?? '',
      path: decodeURIComponent(rawPath),
      server: role,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const err = (status: number, code: string): void => {
      res.writeHead(status, { 'X-Error-Code': code, 'Content-Type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: code }));
    };

    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(rawPath);
    if (cdn) {
      const hit = this.findBySha(cdn[1]);
      if (!hit) return err(404, 'EntryNotFound');
      return this.sendBody(req, res, hit.name, hit.buf, {});
    }
    if (role === 'cdn') return err(404, 'EntryNotFound');

    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(rawPath);
    if (!m) return err(404, 'RepoNotFound');
    const [, repoId, revEnc, fileEnc] = m;
    const rev = decodeURIComponent(revEnc);
    const file = decodeURIComponent(fileEnc);
    const renamed = this.renames.get(repoId);
    if (renamed) {
      res.writeHead(307, { Location: `/${renamed}/resolve/${revEnc}/${fileEnc}` });
      return void res.end();
    }
    const repo = this.repos.get(repoId);
    if (!repo) return err(404, 'RepoNotFound');
    if (repo.gatedToken && req.headers.authorization !== `Bearer ${repo.gatedToken}`) return err(401, 'GatedRepo');
    if (rev !== repo.commit && !repo.refs.has(rev)) return err(404, 'RevisionNotFound');
    const buf = repo.files.get(file);
    if (!buf) return err(404, 'EntryNotFound');

    const common = { 'X-Repo-Commit': repo.commit };
    if (LFS_FILES.has(file)) {
      const sha = sha256(buf);
      res.writeHead(302, {
        ...common,
        Location: `${this.cdnBase}/cdn/${sha}`,
        'X-Linked-Etag': `"${sha}"`,
        'X-Linked-Size': String(buf.length),
        // The git id of the LFS pointer file, which clients must not use as the blob name.
        ETag: `"${gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\n`))}"`,
        'Content-Length': '0',
      });
      return void res.end();
    }
    return this.sendBody(req, res, file, buf, { ...common, ETag: `"${gitBlobSha1(buf)}"` });
  }

  private async sendBody(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    name: string,
    full: Buffer,
    headers: Record<string, string>,
  ): Promise<void> {
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !this.ignoreRange) {
      start = Number(range[1]);
      if (start >= full.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${full.length}` });
        return void res.end();
      }
      res.writeHead(206, {
        ...headers,
        'Content-Length': String(full.length - start),
        'Content-Range': `bytes ${start}-${full.length - 1}/${full.length}`,
        'Accept-Ranges': 'bytes',
      });
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': String(full.length), 'Accept-Ranges': 'bytes' });
    }
    if (req.method === 'HEAD') return void res.end();

    let body = full;
    if (this.corrupt.has(name)) {
      body = Buffer.from(full);
      const at = Math.floor(body.length / 2);
      body[at] = body[at] ^ 0xff;
    }
    const knob = this.drop.get(name);
    let stopAt = full.length;
    if (knob && knob.times > 0 && start + knob.afterBytes < full.length) {
      knob.times--;
      stopAt = start + knob.afterBytes;
    }
    const CHUNK = 64 * 1024;
    for (let off = start; off < stopAt; off += CHUNK) {
      if (res.destroyed) return;
      const chunk = body.subarray(off, Math.min(off + CHUNK, stopAt));
      const ok = res.write(chunk);
      this.sent.set(name, (this.sent.get(name) ?? 0) + chunk.length);
      if (!ok) await new Promise<void>((r) => res.once('drain', () => r()));
      if (this.bytesPerSecond > 0) await sleep((chunk.length / this.bytesPerSecond) * 1000);
    }
    if (stopAt < full.length) {
      // Flush what was written, then cut the connection without finishing the body.
      await new Promise<void>((r) => res.write('', () => r()));
      res.socket?.destroy();
      return;
    }
    res.end();
  }
}
