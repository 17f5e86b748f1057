import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GoldenDist {
  top_ids: number[];
  top_logprobs: number[];
  top_logits: number[];
  gap_to_next: number;
  entropy: number;
  kl_to_final: number;
}
export interface GoldenTarget { id: number; prob: number; logprob: number; rank: number }
export interface GoldenLayer {
  layer: number;
  with_norm: GoldenDist;
  without_norm: GoldenDist;
  targets: GoldenTarget[];
  targets_without_norm: GoldenTarget[];
  per_position_top1_ids: number[];
  per_position_top1_probs: number[];
  per_position_top1_gap: number[];
  hidden_final_f32: number[];
}
export interface GoldenPrompt {
  text: string;
  input_ids: number[];
  n_tokens: number;
  final_position: number;
  lens: GoldenLayer[];
  attention_final_pos: number[][][];
}
export interface Golden { top_k: number; targets: number[]; prompts: GoldenPrompt[] }


/** golden.json of a fixture folder (see its README for the definitions). */
export function loadGolden(dir: string): Golden {
  return JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
}
