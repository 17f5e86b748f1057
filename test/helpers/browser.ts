import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

export const CHROMIUM = process.env.LOGITLENS_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Is a headless Chromium here? Missing is a failure (with what to install), unless the caller
 * set LOGITLENS_SKIP_BROWSER=1: then the browser tests are skipped, never silently passed.
 */
export function browserStatus(): { ok: true } | { ok: false; skip: boolean; why: string } {
  if (existsSync(CHROMIUM)) return { ok: true };
  const why = `headless Chromium not found at ${CHROMIUM}: install it (Debian: apt-get install -y chromium) or point LOGITLENS_CHROMIUM at it; set LOGITLENS_SKIP_BROWSER=1 to skip the browser tests`;
  return { ok: false, skip: process.env.LOGITLENS_SKIP_BROWSER === '1', why };
}

export interface BrowserRun {
  code: number | null;
  stdout: string;
  /** messages the page wrote to its console (including uncaught exceptions) */
  console: string[];
}

/** One headless Chromium run, offline, with a fresh profile; page console output is collected. */
export function chromium(args: string[], url: string): Promise<BrowserRun> {
  const profile = mkdtempSync(join(tmpdir(), 'logitlens-chromium-'));
  const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0',
    ...args, url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, flags, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
      // Chromium logs page console messages as "...:CONSOLE:<line>] "message", source: ..."
      const consoleLines = stderr.split('\n').filter((l) => /:CONSOLE[:(]/.test(l));
      resolve({ code, stdout, console: consoleLines });
    });
  });
}

export interface PngInfo {
  width: number;
  height: number;
  /** distinct byte values in the decoded scanlines: a blank page has very few */
  distinctBytes: number;
  bytes: number;
}

/** Minimal PNG reader: enough to tell a real screenshot from an empty or blank one. */
export function readPng(path: string): PngInfo {
  const buf = readFileSync(path);
  if (buf.length < 33 || buf.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new Error(`${path} is not a PNG`);
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  const idat: Buffer[] = [];
  for (let off = 8; off + 8 <= buf.length;) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (type === 'IDAT') idat.push(buf.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const seen = new Set<number>();
  for (let i = 0; i < raw.length; i += 7) seen.add(raw[i]);
  return { width, height, distinctBytes: seen.size, bytes: buf.length };
}
