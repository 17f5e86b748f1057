/**
 * Runs resolveHubModel in a separate process for the concurrency and Ctrl-C tests.
 * Usage: node hub-child.js '<json HubOptions + repoId>'; prints the result as JSON.
 * Without arguments (e.g. when a test runner loads every file) it does nothing.
 */
import { resolveHubModel } from '../../src/hub/index.js';

const arg = process.argv[2];
if (arg) {
  const { repoId, ...opts } = JSON.parse(arg) as { repoId: string; endpoint: string; cacheDir: string };
  try {
    const r = await resolveHubModel(repoId, { ...opts, offline: false });
    process.stdout.write(JSON.stringify(r));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
