import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ExitStatus, LogitlensError, UsageError } from '../errors.js';
import { analyzePrompt, validateK } from '../lens/analyze.js';
import { buildOnnxFolder, inspectModelFolder, prepareModelFolder } from '../model/store.js';
import { LoadedModel } from '../model/runtime.js';
import { renderTable, terminalStyle } from '../render/table.js';
import { collect, parseCommonFlags, parseLayers } from './args.js';
import { addBatchOptions, batchAction, type BatchFlags } from './batch.js';
import { resolveTargets } from './targets.js';

const EXAMPLES = `
Examples:
  $ logitlens --model ./gpt2 "The capital of France is"
  $ logitlens --model ./gpt2 --json "The capital of France is" | jq '.layers[-1].top[0]'
  $ logitlens --model ./gpt2 --layers 0,6,12 -k 5 --target " Paris" "The capital of France is"
  $ logitlens --model ./gpt2 --position -2 --no-final-norm "The capital of France is"
  $ logitlens export --model ./gpt2 -o ./gpt2-onnx
  $ logitlens --model ./gpt2-onnx "The capital of France is"

Layer 0 is the token + position embedding; layer l is the residual stream after l blocks, read
before the final layer norm. The lens applies ln_f (unless --no-final-norm) and the tied
unembedding, then reports the next-token distribution at the analyzed position.

Exit codes: 0 ok, 1 runtime failure, 2 usage error. Set NO_COLOR to disable colors.`;

export interface MainOptions {
  model: string;
  json?: boolean;
  k?: string;
  layers?: string;
  position?: string;
  finalNorm: boolean;
  target?: string[];
  targetId?: string[];
  threads?: string;
}

/** Messages for people go to stderr; stdout carries data only. */
export function note(msg: string): void {
  process.stderr.write(`logitlens: ${msg}\n`);
}

export async function openModel(spec: string, threads?: number, mode: 'single' | 'batch' = 'single'): Promise<{ model: LoadedModel; id: string }> {
  const dir = resolve(spec);
  if (!existsSync(dir)) {
    throw new LogitlensError(`model path ${spec} does not exist; --model takes a Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer) or a folder made by logitlens export`);
  }
  const prepared = prepareModelFolder(dir, { onBuild: () => note(`building the ONNX graph for ${spec} (first run; cached afterwards)…`) });
  const model = await LoadedModel.open(prepared.dir, { threads, mode });
  return { model, id: spec };
}

async function analyzeAction(words: string[], o: MainOptions): Promise<void> {
  const prompt = words.join(' ');
  if (prompt.trim() === '') {
    throw new UsageError('no prompt given (or it is only whitespace); usage: logitlens [options] "text to analyze"');
  }
  // flag values that need no model are checked first, so a typo fails fast
  const { threads, k, position, targetIds: targetIdsRaw } = parseCommonFlags(o);

  const { model, id } = await openModel(o.model, threads);
  try {
    const c = model.config;
    validateK(k, c.vocab_size);
    const layers = o.layers === undefined ? undefined : parseLayers(o.layers, c.n_layer);
    const targets = resolveTargets(model, o.target ?? [], targetIdsRaw, note);
    const report = await analyzePrompt(model, prompt, { k, layers, position, finalNorm: o.finalNorm, targets }, id);
    if (o.json) {
      await write(JSON.stringify(report, null, 2) + '\n');
    } else {
      await write(renderTable(report, (t) => model.tokenizer.token(t), terminalStyle(process.stdout)));
    }
  } finally {
    await model.close();
  }
}

async function exportAction(o: { model: string; output: string; force?: boolean }): Promise<void> {
  const src = resolve(o.model);
  if (!existsSync(src)) throw new LogitlensError(`model path ${o.model} does not exist; give a Hugging Face GPT-2 folder`);
  if (inspectModelFolder(src) === 'onnx') {
    throw new UsageError(`${o.model} is already an ONNX folder (it has model.onnx); export takes a checkpoint folder with model.safetensors`);
  }
  const out = resolve(o.output);
  if (existsSync(out) && readdirSync(out).length > 0 && !o.force) {
    throw new UsageError(`${o.output} exists and is not empty; choose another folder or pass --force to replace it`);
  }
  note(`building ${o.output} from ${o.model}…`);
  buildOnnxFolder(src, out);
  // prove the export loads and passes the self-check before calling it done
  const model = await LoadedModel.open(out, { mode: 'single' });
  try {
    await analyzePrompt(model, 'Hello', { k: 1 });
  } finally {
    await model.close();
  }
  note(`wrote ${o.output} (model.onnx, model.onnx.data, lens.onnx, config.json, tokenizer)`);
}

/** stdout writes that respect back-pressure and treat a closed pipe (| head) as a normal end. */
export function write(s: string): Promise<void> {
  return new Promise((res) => {
    if (process.stdout.write(s)) res();
    else process.stdout.once('drain', res);
  });
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('logitlens')
    .description('Show what a GPT-2-family model predicts at every layer (the logit lens).')
    .argument('[prompt...]', 'text to analyze (words without quotes are joined with spaces)')
    .addOption(new Option('-m, --model <path>', 'model folder: Hugging Face GPT-2 checkpoint or logitlens export').default('gpt2'))
    .option('-k, --top-k <n>', 'top predictions per layer (default 10)')
    .option('--layers <list>', 'layers to show, e.g. 0,6,12 or 8-12 (default all; -1 = last)')
    .option('--position <n>', 'token position to analyze; negative counts from the end (default -1)')
    .option('--no-final-norm', 'skip the final layer norm before unembedding')
    .option('--target <text>', 'report probability and rank of this token (repeatable)', collect)
    .option('--target-id <id>', 'report probability and rank of this token id (repeatable)', collect)
    .option('--json', 'print one JSON document on stdout (see README for the fields)')
    .option('--threads <n>', 'ONNX Runtime threads (default: all cores)')
    .addHelpText('after', EXAMPLES);
  addBatchOptions(program)
    .showHelpAfterError('(run logitlens --help for usage)')
    .action(async (words: string[], raw: Record<string, unknown>) => {
      const o = { ...raw, k: raw.topK } as unknown as MainOptions;
      if (raw.file !== undefined) return batchAction(words, o as MainOptions & BatchFlags);
      await analyzeAction(words, o);
    });

  program
    .command('export')
    .description('build the ONNX folder for a checkpoint (model.onnx + external data, lens.onnx, config, tokenizer)')
    .requiredOption('-m, --model <path>', 'Hugging Face GPT-2 checkpoint folder')
    .requiredOption('-o, --output <dir>', 'folder to write')
    .option('--force', 'replace a non-empty output folder')
    .addHelpText('after', '\nExample:\n  $ logitlens export --model ./gpt2 -o ./gpt2-onnx\n  $ logitlens --model ./gpt2-onnx "The capital of France is"')
    .action(exportAction);

  program.exitOverride();
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // the reader went away (| head): stop quietly, as a good Unix citizen does
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
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
    if (e instanceof LogitlensError) {
      process.stderr.write(`logitlens: error: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`logitlens: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
