"""Export the trained checkpoint to models/demo (HF GPT-2 layout, float16) and evaluate it.

All numbers are computed from the exported float16 safetensors (cast to float32)
with the FULL 50,257-way tied unembedding, using an independent forward pass
written against the HF key names (not the training model).

Usage:
  python export_eval.py --ckpt /work/demo-ckpt/ckpt.pt --data /work/demo-data --out ../../models/demo
"""
import argparse
import json
import math
import os
import re
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

VOCAB = 50257
EOT = 50256


def export(ckpt, out_dir):
    sd = ckpt["model"]
    a = ckpt["args"]
    keep = np.asarray(ckpt["keep"])
    compact = sd["wte.weight"]
    K = len(keep)
    d = compact.shape[1]
    wte = compact[K].repeat(VOCAB, 1).clone()  # bucket row everywhere ...
    wte[torch.from_numpy(keep)] = compact[:K]  # ... except the ids with their own row
    t = {"transformer.wte.weight": wte, "transformer.wpe.weight": sd["wpe.weight"]}
    for i in range(a["n_layer"]):
        p, q = f"h.{i}.", f"transformer.h.{i}."
        t[q + "ln_1.weight"] = sd[p + "ln_1.weight"]; t[q + "ln_1.bias"] = sd[p + "ln_1.bias"]
        t[q + "attn.c_attn.weight"] = sd[p + "c_attn.weight"].t()  # Conv1D [in, out]
        t[q + "attn.c_attn.bias"] = sd[p + "c_attn.bias"]
        t[q + "attn.c_proj.weight"] = sd[p + "attn_proj.weight"].t()
        t[q + "attn.c_proj.bias"] = sd[p + "attn_proj.bias"]
        t[q + "ln_2.weight"] = sd[p + "ln_2.weight"]; t[q + "ln_2.bias"] = sd[p + "ln_2.bias"]
        t[q + "mlp.c_fc.weight"] = sd[p + "c_fc.weight"].t()
        t[q + "mlp.c_fc.bias"] = sd[p + "c_fc.bias"]
        t[q + "mlp.c_proj.weight"] = sd[p + "mlp_proj.weight"].t()
        t[q + "mlp.c_proj.bias"] = sd[p + "mlp_proj.bias"]
    t["transformer.ln_f.weight"] = sd["ln_f.weight"]; t["transformer.ln_f.bias"] = sd["ln_f.bias"]
    t = {k: v.detach().to(torch.float16).contiguous() for k, v in t.items()}
    save_file(t, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": EOT,
        "embd_pdrop": 0.0,
        "eos_token_id": EOT,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": a["n_positions"],
        "n_embd": d,
        "n_head": a["n_head"],
        "n_inner": None,
        "n_layer": a["n_layer"],
        "n_positions": a["n_positions"],
        "resid_pdrop": 0.0,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "vocab_size": VOCAB,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return config


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class RefGPT2:
    """Independent GPT-2 forward over HF-named tensors (float32)."""

    def __init__(self, tensors, cfg):
        self.w = {k: v.float() for k, v in tensors.items()}
        self.cfg = cfg

    def ln(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.w[name + ".weight"], self.w[name + ".bias"],
                            self.cfg["layer_norm_epsilon"])

    @torch.no_grad()
    def residuals(self, ids):
        """ids: [B,T] -> list of n_layer+1 residual streams [B,T,d]."""
        w, c = self.w, self.cfg
        B, T = ids.shape
        d, H = c["n_embd"], c["n_head"]
        hd = d // H
        x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:T]
        res = [x]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        for i in range(c["n_layer"]):
            p = f"transformer.h.{i}."
            h = self.ln(x, p + "ln_1")
            qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = qkv.split(d, dim=-1)
            q = q.view(B, T, H, hd).transpose(1, 2); k = k.view(B, T, H, hd).transpose(1, 2)
            v = v.view(B, T, H, hd).transpose(1, 2)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, d)
            x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            h = self.ln(x, p + "ln_2")
            h = gelu_new(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
            res.append(x)
        return res

    def lens_logits(self, resid):
        return self.ln(resid, "transformer.ln_f") @ self.w["transformer.wte.weight"].t()


def windows(stream, T):
    """Non-overlapping windows: inputs stream[s:s+l], targets stream[s+1:s+1+l]."""
    n = len(stream) - 1
    return [(s, min(T, n - s)) for s in range(0, n, T)]


@torch.no_grad()
def heldout_eval(ref, held, T, unseen_mask, bucket_mask):
    n_layer = ref.cfg["n_layer"]
    tot_ce, cnt = 0.0, 0
    kl_sum = np.zeros(n_layer + 1)
    top1_agree = np.zeros(n_layer + 1)
    unseen_mass_sum, bucket_mass_sum = 0.0, 0.0
    targets = []
    wins = windows(held, T)
    for s, l in wins:
        x = torch.from_numpy(held[s:s + l][None]); y = torch.from_numpy(held[s + 1:s + 1 + l])
        res = ref.residuals(x)
        logp_final = ref.lens_logits(res[-1])[0].log_softmax(-1)
        p_final = logp_final.exp()
        tot_ce += -logp_final.gather(1, y[:, None]).sum().item(); cnt += l
        targets.append(y.numpy())
        unseen_mass_sum += p_final[:, unseen_mask].sum().item()
        bucket_mass_sum += p_final[:, bucket_mask].sum().item()
        top_final = logp_final.argmax(-1)
        for li, r in enumerate(res):
            logp_l = ref.lens_logits(r)[0].log_softmax(-1)
            kl_sum[li] += (p_final * (logp_final - logp_l)).sum().item()
            top1_agree[li] += (logp_l.argmax(-1) == top_final).sum().item()
    return {
        "ce": tot_ce / cnt, "tokens": cnt, "targets": np.concatenate(targets),
        "kl": (kl_sum / cnt).tolist(), "top1_agree": (top1_agree / cnt).tolist(),
        "unseen_mass": unseen_mass_sum / cnt, "bucket_mass": bucket_mass_sum / cnt,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/work/demo-ckpt/ckpt.pt")
    ap.add_argument("--data", default="/work/demo-data")
    ap.add_argument("--out", default="../../models/demo")
    ap.add_argument("--max-heldout", type=int, default=0, help="debug: limit held-out tokens")
    ap.add_argument("--skip-hf", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()

    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    cfg = export(ckpt, args.out)
    print("exported step", ckpt["step"], flush=True)

    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    tok = Tokenizer(models.BPE.from_file(os.path.join(args.out, "vocab.json"), os.path.join(args.out, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()

    tensors = load_file(os.path.join(args.out, "model.safetensors"))
    ref = RefGPT2(tensors, cfg)
    T = cfg["n_positions"]

    train = np.fromfile(os.path.join(args.data, "train.bin"), dtype=np.uint16).astype(np.int64)
    held = np.fromfile(os.path.join(args.data, "heldout.bin"), dtype=np.uint16).astype(np.int64)
    if args.max_heldout:
        held = held[:args.max_heldout]
    counts = np.bincount(train, minlength=VOCAB)
    unseen_mask = torch.from_numpy(counts == 0)
    keep = np.asarray(ckpt["keep"])
    bucket_mask = torch.ones(VOCAB, dtype=torch.bool); bucket_mask[torch.from_numpy(keep)] = False

    # 1. HF transformers parity check vs the training model
    parity = {}
    from model import CompactGPT2
    a = ckpt["args"]
    tm = CompactGPT2(a["n_layer"], a["n_embd"], a["n_head"], a["n_positions"], len(keep) + 1, ckpt["bucket_size"])
    tm.load_state_dict(ckpt["model"]); tm.eval()
    probe_text = "He lives in the United States. The jury said it did find that many of Georgia's laws are outmoded."
    probe = torch.tensor([tok.encode(probe_text).ids])
    cmap = np.full(VOCAB, len(keep), dtype=np.int64); cmap[keep] = np.arange(len(keep))
    with torch.no_grad():
        clog = tm(torch.from_numpy(cmap[probe.numpy()]))[0]  # compact logits, bucket carries +log(bucket)
        train_full = torch.empty(probe.shape[1], VOCAB)
        train_full[:] = (clog[:, -1] - math.log(ckpt["bucket_size"]))[:, None]
        train_full[:, torch.from_numpy(keep)] = clog[:, :-1]
        ref_logits = ref.lens_logits(ref.residuals(probe)[-1])[0]
    parity["train_f32_vs_export_fp16_ref_max_abs_logit_diff"] = (train_full - ref_logits).abs().max().item()
    if not args.skip_hf:
        try:
            from transformers import GPT2LMHeadModel
            hf = GPT2LMHeadModel.from_pretrained(args.out, torch_dtype=torch.float32, attn_implementation="eager")
            hf.eval()
            with torch.no_grad():
                out = hf(probe, output_hidden_states=True)
            hf_logits = out.logits[0]
            parity["hf_vs_ref_max_abs_logit_diff"] = (hf_logits - ref_logits).abs().max().item()
            parity["hf_vs_train_f32_max_abs_logit_diff"] = (hf_logits - train_full).abs().max().item()
            import transformers
            parity["transformers_version"] = transformers.__version__
        except Exception as e:  # record, don't hide
            parity["hf_error"] = repr(e)
    print("parity", json.dumps(parity), flush=True)

    # 2. held-out evaluation with the full softmax, per-layer lens KL
    ev = heldout_eval(ref, held, T, unseen_mask, bucket_mask)
    N = len(train)
    uni_logp = np.log((counts + 1.0) / (N + VOCAB))
    uni_ce = float(-uni_logp[ev["targets"]].mean())
    tgt_unseen_frac = float((counts[ev["targets"]] == 0).mean())
    print("heldout ce", ev["ce"], "ppl", math.exp(ev["ce"]), "unigram ppl", math.exp(uni_ce), flush=True)
    print("kl", ev["kl"], flush=True)

    # 3. heldout.txt sentences for the TypeScript tests, and their own lens KL
    sents = []
    with open(os.path.join(args.data, "heldout.txt")) as f:
        doc_sents = {}
        cur = None
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("### "):
                cur = line[4:]; doc_sents[cur] = []
            elif cur:
                doc_sents[cur].append(line)
    for doc in sorted(doc_sents):
        for s in doc_sents[doc]:
            nw = len(s.split())
            if 10 <= nw <= 25 and s.isascii() and re.match(r"^[A-Z]", s) and s.endswith(".") and '"' not in s:
                sents.append(s); break
        if len(sents) == 20:
            break
    with open(os.path.join(args.out, "heldout.txt"), "w") as f:
        f.write("\n".join(sents) + "\n")
    kl_s = np.zeros(cfg["n_layer"] + 1); n_s = 0
    with torch.no_grad():
        for s in sents:
            ids = torch.tensor([tok.encode(s).ids])
            res = ref.residuals(ids)
            lp = ref.lens_logits(res[-1])[0].log_softmax(-1); p = lp.exp()
            for li, r in enumerate(res):
                kl_s[li] += (p * (lp - ref.lens_logits(r)[0].log_softmax(-1))).sum().item()
            n_s += ids.shape[1]
    kl_sents = (kl_s / n_s).tolist()

    # 4. sample predictions (final layer top-5, and lens top-1 per layer)
    prompts = ["He lives in the United", "The capital of France is", "It was the first time that",
               "The President of the United", "I don't know what", "He said that the"]
    samples = []
    with torch.no_grad():
        for pr in prompts:
            ids = torch.tensor([tok.encode(pr).ids])
            res = ref.residuals(ids)
            pf = ref.lens_logits(res[-1])[0, -1].softmax(-1)
            top = pf.topk(5)
            lens_top1 = []
            for r in res:
                pl = ref.lens_logits(r)[0, -1].softmax(-1)
                j = int(pl.argmax())
                lens_top1.append({"token": tok.decode([j]), "p": round(float(pl[j]), 4)})
            samples.append({"prompt": pr, "top5": [{"token": tok.decode([int(i)]), "id": int(i), "p": round(float(v), 4)}
                                                    for v, i in zip(top.values, top.indices)],
                            "lens_top1_by_layer": lens_top1})
    for s in samples:
        print(s["prompt"], "->", [(t["token"], t["p"]) for t in s["top5"]], "| lens:", [t["token"] for t in s["lens_top1_by_layer"]], flush=True)

    files = {fn: os.path.getsize(os.path.join(args.out, fn)) for fn in sorted(os.listdir(args.out))}
    result = {
        "checkpoint_step": ckpt["step"],
        "training_tokens_seen": ckpt["step"] * a["batch"] * a["seq"],
        "held_out_tokens": ev["tokens"],
        "held_out_ce_nats": ev["ce"],
        "held_out_ppl": math.exp(ev["ce"]),
        "unigram_ce_nats": uni_ce,
        "unigram_ppl": math.exp(uni_ce),
        "ppl_ratio_model_over_unigram": math.exp(ev["ce"] - uni_ce),
        "eval_protocol": f"exported float16 weights cast to float32, full {VOCAB}-way softmax, non-overlapping windows of {T} tokens over the held-out token stream (documents joined by <|endoftext|>); unigram: add-one smoothed over {VOCAB} ids, fitted on the training split, scored on the same target tokens",
        "lens_kl_by_layer": ev["kl"],
        "lens_kl_note": "mean over held-out positions of KL(P_model || P_layer) in nats; layer l = residual stream after l blocks (0 = embeddings), lens = ln_f then tied unembedding, full softmax",
        "lens_top1_agreement_by_layer": ev["top1_agree"],
        "heldout_txt_lens_kl_by_layer": kl_sents,
        "heldout_txt_tokens": n_s,
        "n_params": int(sum(v.numel() for v in tensors.values())),
        "n_trained_params": int(sum(v.numel() for v in ckpt["model"].values())),
        "seen_id_count": int((counts > 0).sum()),
        "own_row_id_count": int(len(keep)),
        "shared_row_id_count": int(VOCAB - len(keep)),
        "unseen_mass": ev["unseen_mass"],
        "unseen_mass_note": "mean probability the model puts on ids that never occur in the training split",
        "shared_row_mass": ev["bucket_mass"],
        "held_out_target_unseen_fraction": tgt_unseen_frac,
        "parity": parity,
        "samples": samples,
        "file_sizes": files,
        "history": ckpt.get("hist", []),
        "eval_wall_s": time.time() - t0,
    }
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "history")}, indent=1))


if __name__ == "__main__":
    main()
