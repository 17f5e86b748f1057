#!/usr/bin/env node
// ONNX Runtime is loaded only through loadOrt(), which disables its telemetry first.
const { main } = await import('../dist/src/cli/main.js');
process.exitCode = await main(process.argv);
