#!/usr/bin/env node
// Set before onnxruntime-node loads: it records telemetry on Linux otherwise.
process.env.ORT_DISABLE_TELEMETRY = '1';
const { main } = await import('../dist/src/cli/main.js');
process.exitCode = await main(process.argv);
