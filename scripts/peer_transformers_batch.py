"""The usual Python recipe for batch analysis (transformers + torch on CPU, batches of 32): the peer
of scripts/bench-batch.ts.

Usage: python peer_transformers_batch.py MODEL_DIR PROMPTS_TXT
For every prompt: per-layer top-10, entropy and KL to final at the last token, all layers, with ln_f.
Prints one JSON line with timings.
"""
import json
import sys
import time

t0 = time.time()
import torch  # noqa: E402
from transformers import GPT2LMHeadModel, GPT2TokenizerFast  # noqa: E402

t_import = time.time() - t0
model_dir, prompts_path = sys.argv[1], sys.argv[2]
tok = GPT2TokenizerFast.from_pretrained(model_dir)
tok.pad_token = tok.eos_token
tok.padding_side = "right"
model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
prompts = [l.rstrip("\n") for l in open(prompts_path, encoding="utf-8") if l.strip()]
captured = {}
model.transformer.ln_f.register_forward_pre_hook(lambda m, args: captured.__setitem__("pre", args[0]))
t_compute = time.time()
records = 0
with torch.no_grad():
    for i in range(0, len(prompts), 32):
        enc = tok(prompts[i:i + 32], return_tensors="pt", padding=True)
        out = model(**enc, output_hidden_states=True)
        last = enc.attention_mask.sum(1) - 1
        rows = torch.arange(len(last))
        hs = list(out.hidden_states[:-1]) + [captured["pre"]]
        final = torch.log_softmax(out.logits[rows, last], -1)
        for l, h in enumerate(hs):
            lp = torch.log_softmax(model.lm_head(model.transformer.ln_f(h[rows, last])), -1)
            top = torch.topk(lp, 10)
            entropy = -(lp.exp() * lp).sum(-1)
            kl = (final.exp() * (final - lp)).sum(-1)
            _ = (top.indices.tolist(), entropy.tolist(), kl.tolist())
        records += len(last)
print(json.dumps({"prompts": records, "import_s": t_import, "compute_s": time.time() - t_compute, "total_s": time.time() - t0}))
