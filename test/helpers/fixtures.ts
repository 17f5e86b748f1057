import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/...). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'logitlens.js');

/**
 * The tiny random GPT-2 and its golden outputs. The shared copy is the source of truth when it
 * is there (CI); a fresh clone uses the copy committed under test/fixtures.
 */
export function fixtureDir(name = 'gpt2-tiny'): string {
  const shared = join(ROOT, '..', 'shared', 'fixtures', name);
  return existsSync(join(shared, 'golden.json')) ? shared : join(ROOT, 'test', 'fixtures', name);
}

export function tempDir(prefix = 'logitlens-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
