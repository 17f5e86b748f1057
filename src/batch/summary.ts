import { Chalk } from 'chalk';
import Table from 'cli-table3';
import type { LensReport } from '../lens/analyze.js';
import { displayToken, type TokenInfo } from '../model/tokenizer.js';
import { bar, formatProb, type TableStyle } from '../render/table.js';
import { isError } from './input.js';
import type { BatchRecord } from './run.js';

export interface TargetSummary {
  id: number;
  token: string;
  /** prompts that asked for this target */
  prompts: number;
  mean_prob: number;
  mean_rank: number;
}

export interface LayerSummary {
  layer: number;
  mean_entropy: number;
  median_entropy: number;
  mean_kl_to_final: number;
  /** share of prompts whose lens top-1 at this layer is the model's final top-1 */
  top1_agreement: number;
  targets: TargetSummary[];
}

/** `--summary --json`: statistics across all prompts (version 1). */
export interface BatchSummary {
  version: 1;
  kind: 'summary';
  model: LensReport['model'] | null;
  prompts: number;
  errors: number;
  final_norm: boolean | null;
  layers: LayerSummary[];
  lock_in: {
    /** prompts per lock-in layer, ascending by layer; layers no prompt locks in at are listed with 0 */
    distribution: Array<{ layer: number; count: number }>;
    /** prompts whose lens top-1 at the last reported layer is not the final top-1 */
    never: number;
    mean: number | null;
    median: number | null;
  };
}

/** A Float32Array that grows: one float per prompt and layer is what the medians need. */
class Floats {
  private data = new Float32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  median(): number {
    if (this.length === 0) return NaN;
    const s = this.data.slice(0, this.length).sort();
    const m = this.length >> 1;
    return this.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
}

interface LayerAcc {
  entropy: Floats;
  entropySum: number;
  klSum: number;
  agree: number;
  targets: Map<number, { token: string; n: number; prob: number; rank: number }>;
}

/** Streams records in, keeps per-layer sums (and entropies for the medians), never the reports. */
export class SummaryAccumulator {
  private layers = new Map<number, LayerAcc>();
  private lockIns = new Floats();
  private lockCounts = new Map<number, number>();
  private never = 0;
  private prompts = 0;
  private errors = 0;
  private model: LensReport['model'] | null = null;
  private finalNorm: boolean | null = null;

  add(r: BatchRecord): void {
    if (isError(r)) {
      this.errors++;
      return;
    }
    this.prompts++;
    this.model ??= r.report.model;
    this.finalNorm ??= r.report.final_norm;
    for (const l of r.report.layers) {
      let acc = this.layers.get(l.layer);
      if (!acc) this.layers.set(l.layer, (acc = { entropy: new Floats(), entropySum: 0, klSum: 0, agree: 0, targets: new Map() }));
      acc.entropy.push(l.entropy);
      acc.entropySum += l.entropy;
      acc.klSum += l.kl_to_final;
      if (l.top[0].id === r.finalTop1) acc.agree++;
      for (const t of l.targets) {
        let ts = acc.targets.get(t.id);
        if (!ts) acc.targets.set(t.id, (ts = { token: t.token, n: 0, prob: 0, rank: 0 }));
        ts.n++;
        ts.prob += t.prob;
        ts.rank += t.rank;
      }
    }
    if (r.lockInLayer === null) {
      this.never++;
    } else {
      this.lockIns.push(r.lockInLayer);
      this.lockCounts.set(r.lockInLayer, (this.lockCounts.get(r.lockInLayer) ?? 0) + 1);
    }
  }

  result(): BatchSummary {
    const layerIds = [...this.layers.keys()].sort((a, b) => a - b);
    const n = this.prompts;
    let lockSum = 0;
    for (const [layer, count] of this.lockCounts) lockSum += layer * count;
    return {
      version: 1,
      kind: 'summary',
      model: this.model,
      prompts: n,
      errors: this.errors,
      final_norm: this.finalNorm,
      layers: layerIds.map((layer) => {
        const a = this.layers.get(layer)!;
        return {
          layer,
          mean_entropy: a.entropySum / n,
          median_entropy: a.entropy.median(),
          mean_kl_to_final: a.klSum / n,
          top1_agreement: a.agree / n,
          targets: [...a.targets].map(([id, t]) => ({ id, token: t.token, prompts: t.n, mean_prob: t.prob / t.n, mean_rank: t.rank / t.n })),
        };
      }),
      lock_in: {
        distribution: layerIds.map((layer) => ({ layer, count: this.lockCounts.get(layer) ?? 0 })),
        never: this.never,
        mean: this.lockIns.length ? lockSum / this.lockIns.length : null,
        median: this.lockIns.length ? this.lockIns.median() : null,
      },
    };
  }
}

/** The summary for a terminal: a per-layer table, then the lock-in distribution as bars. */
export function renderSummary(s: BatchSummary, tokenInfo: (id: number) => TokenInfo, style: TableStyle): string {
  const ch = new Chalk({ level: style.color ? 3 : 0 });
  const opts = {
    style: { head: style.color ? ['bold'] : [], border: style.color ? ['grey'] : [], compact: true, 'padding-left': 1, 'padding-right': 1 },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  };
  const right = (content: string) => ({ content, hAlign: 'right' as const });
  const lines: string[] = [];
  const m = s.model;
  lines.push(`${ch.bold('model')}  ${m ? `${m.id} · ${m.n_layer} layers · final norm ${s.final_norm ? 'on' : 'off'}` : '(no prompt analyzed)'}`);
  lines.push(`${ch.bold('prompts')} ${s.prompts}${s.errors ? ch.red(` · ${s.errors} line${s.errors === 1 ? '' : 's'} failed`) : ''}`);
  if (s.prompts === 0) return lines.join('\n') + '\n';
  const targets = s.layers[0]?.targets ?? [];
  const show = (id: number) => displayToken(tokenInfo(id));
  const t = new Table({
    head: ['layer', 'entropy mean', 'median', 'KL mean', 'top-1 = final', '', ...targets.map((x) => `${show(x.id)} p / rank`)],
    ...opts,
  });
  for (const l of s.layers) {
    t.push([
      right(String(l.layer)), right(l.mean_entropy.toFixed(2)), right(l.median_entropy.toFixed(2)), right(l.mean_kl_to_final.toFixed(2)),
      right(`${(l.top1_agreement * 100).toFixed(1)}%`), bar(l.top1_agreement),
      ...targets.map((x) => {
        const lt = l.targets.find((y) => y.id === x.id);
        return right(lt ? `${formatProb(lt.mean_prob)} / #${lt.mean_rank.toFixed(1)}` : '');
      }),
    ]);
  }
  lines.push(t.toString());
  lines.push(ch.bold('lock-in layer') + ch.dim('  (first layer from which the lens top-1 stays the final top-1)'));
  const d = new Table({ head: ['layer', 'prompts', 'share', ''], ...opts });
  const rows = [...s.lock_in.distribution.map((x) => [String(x.layer), x.count] as const), ['never', s.lock_in.never] as const];
  for (const [label, count] of rows) d.push([right(label), right(String(count)), right(`${((count / s.prompts) * 100).toFixed(1)}%`), bar(count / s.prompts)]);
  lines.push(d.toString());
  if (s.lock_in.median !== null) lines.push(ch.dim(`median lock-in layer ${s.lock_in.median}, mean ${s.lock_in.mean!.toFixed(2)}`));
  return lines.join('\n') + '\n';
}
