import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ExitStatus, LogitlensError, UsageError } from '../errors.js';
import { analyzePrompt, validateK } from '../lens/analyze.js';
import { buildOnnxFolder, inspectModelFolder } from '../model/store.js';
import { registerCacheCommands } from './cache.js';
import { LoadedModel } from '../model/runtime.js';
import { renderTable, terminalStyle } from '../render/table.js';
import { collect, parseCommonFlags, parseLayers } from './args.js';
import { addBatchOptions, batchAction, type BatchFlags } from './batch.js';
import { interrupt, note, openModel, write } from './io.js';
import { resolveTargets } from './targets.js';
import { parsePictureFlags, picturesAction, wantsPictures, type PictureFlags } from './grid.js';
import { SHADE_KINDS } from '../render/shade.js';

const EXAMPLES = `
Examples:
  $ logitlens "The capital of France is"                 # gpt2 from the Hugging Face Hub
  $ logitlens --model ./gpt2 "The capital of France is"
  $ logitlens --model ./gpt2 --json "The capital of France is" | jq '.layers[-1].top[0]'
  $ logitlens --model ./gpt2 --layers 0,6,12 -k 5 --target " Paris" "The capital of France is"
  $ logitlens --model ./gpt2 --position -2 --no-final-norm "The capital of France is"
  $ logitlens --model ./gpt2 --grid --positions 0-20 "The capital of France is"
  $ logitlens --model ./gpt2 --attention all --html report.html --svg grid.svg "The capital of France is"
  $ logitlens export --model ./gpt2 -o ./gpt2-onnx
  $ logitlens --model ./gpt2-onnx "The capital of France is"
  $ logitlens pull gpt2-medium && logitlens models

Layer 0 is the token + position embedding; layer l is the residual stream after l blocks, read
before the final layer norm. The lens applies ln_f (unless --no-final-norm) and the tied
unembedding, then reports the next-token distribution at the analyzed position.

Environment: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE=1, HF_HUB_CACHE / HF_HOME, XDG_CACHE_HOME, NO_COLOR.
Exit codes: 0 ok, 1 runtime failure, 2 usage error.`;

export interface MainOptions extends PictureFlags {
  model: string;
  json?: boolean;
  k?: string;
  layers?: string;
  position?: string;
  finalNorm: boolean;
  target?: string[];
  targetId?: string[];
  threads?: string;
  revision?: string;
  /** --model was not given */
  modelIsDefault?: boolean;
}

async function analyzeAction(words: string[], o: MainOptions): Promise<void> {
  const prompt = words.join(' ');
  if (prompt.trim() === '') {
    throw new UsageError('no prompt given (or it is only whitespace); usage: logitlens [options] "text to analyze"');
  }
  // flag values that need no model are checked first, so a typo fails fast
  const { threads, k, position, targetIds: targetIdsRaw } = parseCommonFlags(o);
  const pictures = parsePictureFlags(o);

  const { model, id } = await openModel(o.model, { threads, revision: o.revision, implicit: o.modelIsDefault });
  try {
    const c = model.config;
    validateK(k, c.vocab_size);
    const layers = o.layers === undefined ? undefined : parseLayers(o.layers, c.n_layer);
    const targets = resolveTargets(model, o.target ?? [], targetIdsRaw, note);
    if (pictures.shade === 'target' && targets.length === 0) {
      throw new UsageError('--shade target shades by the first --target\'s probability; add --target " Paris" (or --target-id)');
    }
    stopIfInterrupted();
    if (wantsPictures(pictures, targets)) {
      await picturesAction(model, id, prompt, { k, layers, position, finalNorm: o.finalNorm, targets, json: !!o.json }, pictures, { write, note });
      return;
    }
    const report = await analyzePrompt(model, prompt, { k, layers, position, finalNorm: o.finalNorm, targets }, id);
    stopIfInterrupted();
    if (o.json) {
      await write(JSON.stringify(report, null, 2) + '\n');
    } else {
      await write(renderTable(report, (t) => model.tokenizer.token(t), terminalStyle(process.stdout)));
    }
  } finally {
    await model.close();
  }
}

/** Ctrl-C during a build or an analysis (synchronous work) is honoured before anything is printed. */
function stopIfInterrupted(): void {
  if (interrupt.signal.aborted) {
    process.stderr.write('logitlens: interrupted\n');
    throw new ExitStatus(130);
  }
}

async function exportAction(o: { model: string; output: string; force?: boolean }): Promise<void> {
  const src = resolve(o.model);
  if (!existsSync(src)) throw new LogitlensError(`model path ${o.model} does not exist; give a Hugging Face GPT-2 folder`);
  if (inspectModelFolder(src) === 'onnx') {
    throw new UsageError(`${o.model} is already an ONNX folder (it has model.onnx); export takes a checkpoint folder with model.safetensors`);
  }
  const out = resolve(o.output);
  if (out === src || src.startsWith(out + sep)) {
    throw new UsageError(`-o ${o.output} is the checkpoint folder or contains it; write the export somewhere else`);
  }
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new UsageError(`-o ${o.output} is a file; give a folder to write the export into`);
    const entries = readdirSync(out);
    if (entries.length > 0 && !o.force) {
      throw new UsageError(`${o.output} exists and is not empty; choose another folder or pass --force to replace it`);
    }
    if (entries.length > 0 && !entries.includes('logitlens.json') && !entries.includes('model.onnx')) {
      throw new UsageError(`${o.output} is not an earlier export (no logitlens.json or model.onnx); --force only replaces exports: remove it yourself if you mean it`);
    }
  }
  note(`building ${o.output} from ${o.model}…`);
  // build and self-check beside the target, so a failed export never replaces a good one
  const staging = `${out}.export-${process.pid}`;
  try {
    buildOnnxFolder(src, staging);
    const model = await LoadedModel.open(staging, { mode: 'single' });
    try {
      await analyzePrompt(model, 'Hello', { k: 1 });
    } finally {
      await model.close();
    }
    rmSync(out, { recursive: true, force: true });
    renameSync(staging, out);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  note(`wrote ${o.output} (model.onnx, model.onnx.data, config.json, tokenizer)`);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('logitlens')
    .description('Show what a GPT-2-family model predicts at every layer (the logit lens).')
    .argument('[prompt...]', 'text to analyze (words without quotes are joined with spaces)')
    .addOption(new Option('-m, --model <id|path>', 'Hub repo id (gpt2, distilgpt2, org/name) or a folder: Hugging Face GPT-2 checkpoint or logitlens export').default('gpt2'))
    .option('-k, --top-k <n>', 'top predictions per layer (default 10)')
    .option('--layers <list>', 'layers to show, e.g. 0,6,12 or 8-12 (default all; -1 = last)')
    .option('--position <n>', 'token position to analyze; negative counts from the end (default -1)')
    .option('--no-final-norm', 'skip the final layer norm before unembedding')
    .option('--target <text>', 'report probability and rank of this token (repeatable)', collect)
    .option('--target-id <id>', 'report probability and rank of this token id (repeatable)', collect)
    .option('--json', 'print one JSON document on stdout (see README for the fields)')
    .option('--revision <rev>', 'Hub branch, tag or commit (default main)')
    .option('--threads <n>', 'ONNX Runtime threads (default: all cores)')
    .option('--grid', 'show the layer × position grid: each cell the top-1 token (-k default 1)')
    .option('--positions <range>', 'grid columns to compute and show, e.g. 10-30 (default all)')
    .addOption(new Option('--shade <kind>', 'grid shading').choices([...SHADE_KINDS]).default('prob'))
    .option('--attention <layers>', 'attention of the analyzed position per head: a layer list (1..n_layer) or all')
    .option('--html <file>', 'write a self-contained HTML report (grid, curves, attention)')
    .option('--svg <file>', 'write the grid heatmap as a standalone SVG')
    .addHelpText('after', EXAMPLES);
  addBatchOptions(program)
    .showHelpAfterError('(run logitlens --help for usage)')
    .action(async (words: string[], raw: Record<string, unknown>) => {
      const o = { ...raw, k: raw.topK, modelIsDefault: program.getOptionValueSource('model') === 'default' } as unknown as MainOptions;
      if (raw.file !== undefined) return batchAction(words, o as MainOptions & BatchFlags);
      await analyzeAction(words, o);
    });

  program
    .command('export')
    .description('build the ONNX folder for a checkpoint (model.onnx + external data, config, tokenizer)')
    .requiredOption('-m, --model <path>', 'Hugging Face GPT-2 checkpoint folder')
    .requiredOption('-o, --output <dir>', 'folder to write')
    .option('--force', 'replace a non-empty output folder')
    .addHelpText('after', '\nExample:\n  $ logitlens export --model ./gpt2 -o ./gpt2-onnx\n  $ logitlens --model ./gpt2-onnx "The capital of France is"')
    .action(exportAction);

  registerCacheCommands(program, { note, write, signal: interrupt.signal });
  // options before a subcommand belong to the program, after it to the subcommand (export --model)
  program.enablePositionalOptions();
  program.exitOverride();
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // the reader went away (| head): stop quietly, as a good Unix citizen does
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  process.once('SIGINT', () => {
    interrupt.abort(new LogitlensError('interrupted (Ctrl-C); a partial download is kept and resumes on the next run', 1));
    process.once('SIGINT', () => process.exit(130));
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2; // commander already printed the message to stderr
    }
    if (e instanceof ExitStatus) return e.code;
    if (interrupt.signal.aborted) {
      process.stderr.write('logitlens: interrupted\n');
      return 130;
    }
    if (e instanceof LogitlensError) {
      process.stderr.write(`logitlens: error: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`logitlens: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
