// Runs the CLI in-process and records its peak RSS, so the benchmark measures exactly what a user runs.
import { writeFileSync } from 'node:fs';

const { main } = await import('../src/cli/main.js');
const code = await main(process.argv);
const out = process.env.LOGITLENS_RSS_FILE;
if (out) writeFileSync(out, JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
process.exitCode = code;
