// Runs the CLI in this process and reports its peak resident set size on stderr, so a benchmark
// can measure a child process without depending on /usr/bin/time.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
process.env.ORT_DISABLE_TELEMETRY = '1';
process.argv = [process.argv[0], join(ROOT, 'bin', 'logitlens.js'), ...process.argv.slice(2)];
process.on('exit', () => {
  process.stderr.write(`\nlogitlens-bench: maxrss_kb=${process.resourceUsage().maxRSS}\n`);
});
const { main } = await import('../src/cli/main.js');
process.exitCode = await main(process.argv);
