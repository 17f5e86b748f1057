import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LogitlensError } from '../src/errors.js';
import {
  hubCacheDir,
  isHubRepoId,
  listCachedHubModels,
  removeCachedHubModel,
  resolveHubModel,
  type HubOptions,
} from '../src/hub/index.js';
import { diskError } from '../src/hub/download.js';
import { FAKE_COMMIT, FakeHub, fixtureFiles, GATED_TOKEN, gitBlobSha1, sha256 } from './helpers/fake-hub.js';

const REPO = 'openai-community/gpt2';
const MODEL_DIR = 'models--openai-community--gpt2';
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'hub-child.js');
const files = fixtureFiles();
const MODEL_SHA = sha256(files.get('model.safetensors')!);
const MODEL_SIZE = files.get('model.safetensors')!.length;

class Capture {
  text = '';
  isTTY = true;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

let cache: string;
let hub: FakeHub;

function opts(extra: HubOptions = {}): HubOptions {
  return { endpoint: hub.endpoint, cacheDir: cache, token: '', offline: false, progress: false, ...extra };
}

/** Every file under dir, relative, with symlinks shown as `name -> target`. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      const rel = path.relative(dir, full);
      if (e.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(full)}`);
      else if (e.isDirectory()) walk(full);
      else out.push(rel);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

function sha256File(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<LogitlensError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof LogitlensError, `expected LogitlensError, got ${String(e)}`);
    assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected rejection matching ${re}`);
}

const cdnRanges = (): Array<string | undefined> =>
  hub.requests.filter((q) => q.method === 'GET' && q.path.startsWith('/cdn/')).map((q) => q.range);
function rangeStart(r: string | undefined): number {
  const m = /^bytes=(\d+)-$/.exec(r ?? '');
  assert.ok(m, `not a resume Range header: ${r}`);
  return Number(m[1]);
}

const modelBlob = (): string => path.join(cache, MODEL_DIR, 'blobs', MODEL_SHA);
const modelLink = (): string => path.join(cache, MODEL_DIR, 'snapshots', FAKE_COMMIT, 'model.safetensors');

beforeEach(async () => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'logitlens-hub-'));
  hub = await FakeHub.start();
});
afterEach(async () => {
  await hub.stop();
  fs.rmSync(cache, { recursive: true, force: true });
});

describe('repo ids and cache location', () => {
  test('isHubRepoId follows the Hub naming rules', () => {
    for (const ok of ['gpt2', 'distilgpt2', 'openai-community/gpt2', 'a/b', 'Org_1/name.v2-x']) assert.ok(isHubRepoId(ok), ok);
    for (const bad of ['./x', '/abs', 'a/b/c', '', 'a--b/c', 'a/b..c', '-a/b', 'a/b.', 'x.git', 'a/' + 'n'.repeat(97), 'C:\\m', 'a b'])
      assert.ok(!isHubRepoId(bad), bad);
  });

  test('hubCacheDir uses huggingface_hub precedence', () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
    assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/legacy' }), '/legacy');
    assert.equal(hubCacheDir({ HF_HOME: '/h' }), '/h/hub');
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
    assert.equal(hubCacheDir({}), path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
  });

  test('invalid repo id is a usage error', async () => {
    await assert.rejects(resolveHubModel('../etc', opts()), (e: unknown) => e instanceof LogitlensError && e.exitCode === 2);
  });

  test('ENOSPC maps to a disk-full message', () => {
    const e = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    assert.match(diskError(e, '/c/blobs/x.incomplete').message, /disk full while writing \/c\/blobs\/x\.incomplete; free space or set HF_HUB_CACHE/);
  });
});

describe('download and reuse', () => {
  test('first download lays out the HF cache, then offline reuse makes zero requests', async () => {
    const r = await resolveHubModel(REPO, opts());
    assert.deepEqual(r, {
      repoId: REPO,
      revision: 'main',
      commit: FAKE_COMMIT,
      snapshotDir: path.join(cache, MODEL_DIR, 'snapshots', FAKE_COMMIT),
      files: ['config.json', 'tokenizer.json', 'model.safetensors'],
    });
    const cfgEtag = gitBlobSha1(files.get('config.json')!);
    const tokEtag = gitBlobSha1(files.get('tokenizer.json')!);
    assert.deepEqual(tree(path.join(cache, MODEL_DIR)), [
      `blobs/${MODEL_SHA}`,
      `blobs/${cfgEtag}`,
      `blobs/${tokEtag}`,
      'refs/main',
      `snapshots/${FAKE_COMMIT}/config.json -> ../../blobs/${cfgEtag}`,
      `snapshots/${FAKE_COMMIT}/model.safetensors -> ../../blobs/${MODEL_SHA}`,
      `snapshots/${FAKE_COMMIT}/tokenizer.json -> ../../blobs/${tokEtag}`,
    ].sort());
    assert.equal(fs.readFileSync(path.join(cache, MODEL_DIR, 'refs', 'main'), 'utf8'), FAKE_COMMIT);
    assert.equal(sha256File(modelLink()), MODEL_SHA);
    // The weights came from the CDN redirect, exactly once.
    assert.equal(hub.count((q) => q.method === 'GET' && q.path.startsWith('/cdn/')), 1);
    assert.equal(hub.count((q) => q.method === 'GET' && q.path.endsWith('/model.safetensors')), 0);

    hub.requests.length = 0;
    assert.deepEqual(await resolveHubModel(REPO, opts({ offline: true })), r);
    const saved = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const { offline: _ignored, ...noOffline } = opts();
      assert.deepEqual(await resolveHubModel(REPO, noOffline), r);
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = saved;
    }
    assert.equal(hub.count(), 0);

    // Online again: one HEAD to learn main's commit, whose snapshot is complete.
    assert.deepEqual(await resolveHubModel(REPO, opts()), r);
    assert.deepEqual(hub.requests.map((q) => q.method), ['HEAD']);
  });

  test('tokenizer.json missing → vocab.json + merges.txt fetched', async () => {
    const r = await resolveHubModel('org/no-tokenizer-json', opts());
    assert.deepEqual(r.files, ['config.json', 'vocab.json', 'merges.txt', 'model.safetensors']);
    for (const f of r.files) assert.deepEqual(fs.readFileSync(path.join(r.snapshotDir, f)), files.get(f));
    assert.ok(fs.existsSync(path.join(cache, 'models--org--no-tokenizer-json', '.no_exist', FAKE_COMMIT, 'tokenizer.json')));
    hub.requests.length = 0;
    assert.deepEqual(await resolveHubModel('org/no-tokenizer-json', opts({ offline: true })), r);
    assert.equal(hub.count(), 0);
  });

  test('a non-GPT-2 config is rejected before any weights are requested', async () => {
    await rejectsWith(resolveHubModel('org/bert', opts()), /org\/bert is not a GPT-2 model \(model_type bert\)/);
    assert.equal(hub.count((q) => q.path.includes('model.safetensors') || q.path.startsWith('/cdn/')), 0);
  });

  test('a config without model_type but GPT-2-shaped is accepted', async () => {
    const shaped = fixtureFiles();
    const cfg = JSON.parse(shaped.get('config.json')!.toString()) as Record<string, unknown>;
    delete cfg.model_type;
    shaped.set('config.json', Buffer.from(JSON.stringify(cfg)));
    hub.addRepo('org/shaped', shaped);
    const r = await resolveHubModel('org/shaped', opts());
    assert.deepEqual(r.files, ['config.json', 'tokenizer.json', 'model.safetensors']);
  });

  test('renamed repo: relative redirect followed, cached under the asked id', async () => {
    const r = await resolveHubModel('old-org/gpt2', opts());
    assert.equal(r.repoId, 'old-org/gpt2');
    assert.equal(r.snapshotDir, path.join(cache, 'models--old-org--gpt2', 'snapshots', FAKE_COMMIT));
    assert.equal(sha256File(path.join(r.snapshotDir, 'model.safetensors')), MODEL_SHA);
  });

  test('tag revision writes refs/<tag>; commit revision writes no ref', async () => {
    const r = await resolveHubModel(REPO, opts({ revision: 'v1.0' }));
    assert.equal(r.revision, 'v1.0');
    assert.equal(fs.readFileSync(path.join(cache, MODEL_DIR, 'refs', 'v1.0'), 'utf8'), FAKE_COMMIT);
    const c = await resolveHubModel(REPO, opts({ revision: FAKE_COMMIT }));
    assert.equal(c.commit, FAKE_COMMIT);
    assert.deepEqual(fs.readdirSync(path.join(cache, MODEL_DIR, 'refs')), ['v1.0']);
  });

  test('progress goes to the given stderr only when enabled', async () => {
    const quiet = new Capture();
    quiet.isTTY = false;
    await resolveHubModel(REPO, { ...opts(), progress: undefined, stderr: quiet });
    assert.equal(quiet.text, '');
    fs.rmSync(path.join(cache, MODEL_DIR), { recursive: true });
    const loud = new Capture();
    await resolveHubModel(REPO, { ...opts(), progress: undefined, stderr: loud });
    assert.match(loud.text, /model\.safetensors .*done in/);
    assert.equal(loud.text.split('\n').filter((l) => /done in/.test(l)).length, 3);
  });
});

describe('broken transfers', () => {
  test('dropped connection mid-file is resumed with a Range request', async () => {
    hub.drop.set('model.safetensors', { afterBytes: 5_000_000, times: 1 });
    const r = await resolveHubModel(REPO, opts());
    const ranges = cdnRanges();
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], undefined);
    // The client keeps what reached it; the last chunks in flight may be lost with the socket.
    const from = rangeStart(ranges[1]);
    assert.ok(from > 4_000_000 && from <= 5_000_000, `resumed from ${from}`);
    assert.equal(sha256File(path.join(r.snapshotDir, 'model.safetensors')), MODEL_SHA);
    assert.ok(!fs.existsSync(`${modelBlob()}.incomplete`));
  });

  test('repeated drops give up keeping .incomplete; the next run resumes', async () => {
    hub.drop.set('model.safetensors', { afterBytes: 1_000_000, times: Infinity });
    await rejectsWith(resolveHubModel(REPO, opts()), /download of model\.safetensors .* interrupted 3 times.*run the same command again to resume/);
    assert.ok(!fs.existsSync(modelBlob()));
    assert.ok(!fs.existsSync(modelLink()));
    // Each of the three attempts resumed where the previous one broke off.
    const ranges = cdnRanges();
    assert.equal(ranges.length, 3);
    assert.equal(ranges[0], undefined);
    assert.ok(rangeStart(ranges[1]) > 0 && rangeStart(ranges[2]) > rangeStart(ranges[1]));
    const partial = fs.statSync(`${modelBlob()}.incomplete`).size;
    assert.ok(partial > rangeStart(ranges[2]) && partial <= 3_000_000, `kept ${partial}`);
    assert.ok(!fs.existsSync(path.join(cache, MODEL_DIR, 'refs', 'main')));
    hub.drop.clear();
    hub.requests.length = 0;
    await resolveHubModel(REPO, opts());
    assert.deepEqual(cdnRanges(), [`bytes=${partial}-`]);
    assert.equal(sha256File(modelBlob()), MODEL_SHA);
  });

  test('server answering 200 to a Range request restarts from byte 0', async () => {
    hub.drop.set('model.safetensors', { afterBytes: 3_000_000, times: 1 });
    hub.ignoreRange = true;
    await resolveHubModel(REPO, opts());
    assert.equal(sha256File(modelBlob()), MODEL_SHA);
    assert.equal(fs.statSync(modelBlob()).size, MODEL_SIZE);
  });

  test('aborting keeps the partial file for later, publishes nothing and releases the lock', async () => {
    hub.bytesPerSecond = 8_000_000;
    const ac = new AbortController();
    const p = resolveHubModel(REPO, opts({ signal: ac.signal }));
    while ((hub.sent.get('model.safetensors') ?? 0) < 500_000) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof Error && e.name === 'AbortError');
    assert.ok(!fs.existsSync(modelBlob()));
    assert.ok(!fs.existsSync(modelLink()));
    assert.ok(fs.statSync(`${modelBlob()}.incomplete`).size > 0);
    assert.deepEqual(fs.readdirSync(path.join(cache, '.locks', MODEL_DIR)), []);
  });

  test('a corrupted byte is rejected and nothing is published', async () => {
    hub.corrupt.add('model.safetensors');
    await rejectsWith(resolveHubModel(REPO, opts()), /checksum mismatch for model\.safetensors.*retry/);
    assert.ok(!fs.existsSync(modelBlob()));
    assert.ok(!fs.existsSync(`${modelBlob()}.incomplete`));
    assert.ok(!fs.existsSync(modelLink()));
    assert.ok(!fs.readdirSync(path.join(cache, MODEL_DIR, 'blobs')).some((f) => f.startsWith(MODEL_SHA)));
  });
});

describe('hub errors', () => {
  test('404 repo, 404 file, bad revision', async () => {
    await rejectsWith(resolveHubModel('nobody/nothing', opts()), new RegExp(`repository nobody/nothing not found on ${hub.endpoint} \\(check the spelling, or log in with HF_TOKEN if private`));
    await rejectsWith(resolveHubModel('org/no-weights', opts()), /file model\.safetensors not found in org\/no-weights@main/);
    await rejectsWith(resolveHubModel(REPO, opts({ revision: 'nope' })), /revision "nope" not found in openai-community\/gpt2/);
  });

  test('gated repo: without token, with a wrong token, with the right one; token never shown', async () => {
    const err1 = await rejectsWith(resolveHubModel('org/gated', opts()), /repo org\/gated is gated or private.*no token was sent.*accept its terms on the Hub and set HF_TOKEN/);
    const wrong = 'hf_WrongTokenAlsoSecret987654321';
    const err2 = await rejectsWith(resolveHubModel('org/gated', opts({ token: wrong })), /gated or private.*a token was sent/);
    for (const e of [err1, err2]) {
      assert.ok(!e.message.includes(wrong) && !e.message.includes(GATED_TOKEN));
      assert.ok(!String(e.stack).includes(wrong));
    }
    const err = new Capture();
    const r = await resolveHubModel('org/gated', { ...opts({ token: GATED_TOKEN }), progress: true, stderr: err });
    assert.equal(sha256File(path.join(r.snapshotDir, 'model.safetensors')), MODEL_SHA);
    assert.ok(!err.text.includes(GATED_TOKEN));
    assert.ok(hub.requests.some((q) => q.authorization === `Bearer ${GATED_TOKEN}`));
  });

  test('HF_TOKEN is used; the token is not sent to a CDN on another origin', async () => {
    await hub.stop();
    hub = await FakeHub.start({ cdnOtherOrigin: true });
    const saved = process.env.HF_TOKEN;
    process.env.HF_TOKEN = GATED_TOKEN;
    try {
      const { token: _t, ...noToken } = opts();
      await resolveHubModel('org/gated', noToken);
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN;
      else process.env.HF_TOKEN = saved;
    }
    const cdn = hub.requests.filter((q) => q.server === 'cdn');
    assert.equal(cdn.length, 1);
    assert.equal(cdn[0].authorization, undefined);
    assert.ok(hub.requests.filter((q) => q.server === 'hub').every((q) => q.authorization === `Bearer ${GATED_TOKEN}`));
  });

  test('offline without cache says how to fetch it', async () => {
    await rejectsWith(resolveHubModel(REPO, opts({ offline: true })), /HF_HUB_OFFLINE is set.*not in the cache.*unset HF_HUB_OFFLINE/);
    assert.equal(hub.count(), 0);
  });

  test('unreachable Hub: cached model used with a note; uncached model is an error', async () => {
    await resolveHubModel(REPO, opts());
    await hub.stop();
    const err = new Capture();
    const r = await resolveHubModel(REPO, { ...opts(), stderr: err });
    assert.equal(r.commit, FAKE_COMMIT);
    assert.match(err.text, /note: cannot reach .* using cached openai-community\/gpt2@main/);
    await rejectsWith(resolveHubModel('org/no-tokenizer-json', opts()), /cannot reach http:\/\/127\.0\.0\.1:\d+ .*and org\/no-tokenizer-json@main is not in the cache; check your connection or set HF_ENDPOINT/);
  });
});

describe('cache sharing', () => {
  test('a Python-style cache laid out by hand is reused with zero requests', async () => {
    const root = path.join(cache, MODEL_DIR);
    const snap = path.join(root, 'snapshots', FAKE_COMMIT);
    fs.mkdirSync(path.join(root, 'blobs'), { recursive: true });
    fs.mkdirSync(snap, { recursive: true });
    fs.mkdirSync(path.join(root, 'refs'));
    fs.writeFileSync(path.join(root, 'refs', 'main'), FAKE_COMMIT);
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) {
      const buf = files.get(f)!;
      const etag = f === 'model.safetensors' ? sha256(buf) : gitBlobSha1(buf);
      fs.writeFileSync(path.join(root, 'blobs', etag), buf);
      fs.symlinkSync(`../../blobs/${etag}`, path.join(snap, f));
    }
    const off = await resolveHubModel(REPO, opts({ offline: true }));
    assert.equal(off.snapshotDir, snap);
    const byCommit = await resolveHubModel(REPO, opts({ revision: FAKE_COMMIT }));
    assert.equal(byCommit.snapshotDir, snap);
    assert.equal(hub.count(), 0);
    await resolveHubModel(REPO, opts());
    assert.equal(hub.count((q) => q.method === 'GET'), 0);
  });

  test('listCachedHubModels and removeCachedHubModel', async () => {
    await resolveHubModel(REPO, opts());
    await resolveHubModel(REPO, opts({ revision: 'v1.0' }));
    const snap = path.join(cache, MODEL_DIR, 'snapshots', FAKE_COMMIT);
    const bytes = ['config.json', 'tokenizer.json', 'model.safetensors'].reduce((n, f) => n + files.get(f)!.length, 0);
    assert.deepEqual(listCachedHubModels(cache), [
      {
        repoId: REPO,
        revisions: [
          { ref: 'main', commit: FAKE_COMMIT, dir: snap, bytes },
          { ref: 'v1.0', commit: FAKE_COMMIT, dir: snap, bytes },
        ],
      },
    ]);
    assert.equal(removeCachedHubModel(REPO, cache), true);
    assert.equal(removeCachedHubModel(REPO, cache), false);
    assert.deepEqual(listCachedHubModels(cache), []);
  });
});

describe('processes', () => {
  function runChild(extra: Record<string, unknown> = {}): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>; kill: (s: NodeJS.Signals) => void } {
    const child = spawn(process.execPath, [CHILD, JSON.stringify({ repoId: REPO, endpoint: hub.endpoint, cacheDir: cache, token: '', progress: false, ...extra })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, out, err })),
    );
    return { done, kill: (s) => child.kill(s) };
  }

  test('two processes pulling the same model at once both succeed, cache consistent', async () => {
    hub.bytesPerSecond = 20_000_000; // long enough for the two downloads to overlap
    const [a, b] = await Promise.all([runChild().done, runChild().done]);
    assert.equal(a.code, 0, a.err);
    assert.equal(b.code, 0, b.err);
    assert.deepEqual(JSON.parse(a.out), JSON.parse(b.out));
    const blobs = path.join(cache, MODEL_DIR, 'blobs');
    for (const f of fs.readdirSync(blobs)) {
      assert.ok(!f.endsWith('.incomplete'), f);
      const data = fs.readFileSync(path.join(blobs, f));
      assert.ok(f === sha256(data) || f === gitBlobSha1(data), `blob ${f} does not match its content`);
    }
    const locks = path.join(cache, '.locks', MODEL_DIR);
    assert.deepEqual(fs.existsSync(locks) ? fs.readdirSync(locks) : [], []);
    assert.equal(sha256File(modelLink()), MODEL_SHA);
    // The per-blob lock made the later process wait and reuse the blob instead of fetching it again.
    assert.equal(cdnRanges().length, 1);
  });

  test('Ctrl-C mid-download leaves no file under a final name; the next run resumes', async () => {
    hub.bytesPerSecond = 4_000_000;
    const child = runChild();
    while ((hub.sent.get('model.safetensors') ?? 0) < 1_000_000) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    const res = await child.done;
    assert.notEqual(res.code, 0);
    assert.ok(!fs.existsSync(modelBlob()));
    assert.ok(!fs.existsSync(modelLink()));
    const partial = fs.statSync(`${modelBlob()}.incomplete`).size;
    assert.ok(partial > 0 && partial < MODEL_SIZE);
    hub.bytesPerSecond = 0;
    hub.requests.length = 0;
    await resolveHubModel(REPO, opts());
    assert.deepEqual(cdnRanges(), [`bytes=${partial}-`]);
    assert.equal(sha256File(modelBlob()), MODEL_SHA);
    assert.deepEqual(fs.readdirSync(path.join(cache, '.locks', MODEL_DIR)), []);
  });
});
