"""The usual Python recipe for the same analysis (transformers + torch on CPU): the benchmark's peer.

Usage: python peer_transformers.py MODEL_DIR PROMPT
Prints one JSON line: per-layer top-10 ids, entropy and KL to final at the last position.
"""
import json
import sys
import time

t0 = time.time()
import torch  # noqa: E402
from transformers import GPT2LMHeadModel, GPT2TokenizerFast  # noqa: E402

t_import = time.time() - t0
model_dir, prompt = sys.argv[1], sys.argv[2]
tok = GPT2TokenizerFast.from_pretrained(model_dir)
model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
ids = tok(prompt, return_tensors="pt").input_ids
captured = {}
model.transformer.ln_f.register_forward_pre_hook(lambda m, args: captured.__setitem__("pre", args[0]))
with torch.no_grad():
    out = model(ids, output_hidden_states=True)
    hs = list(out.hidden_states[:-1]) + [captured["pre"]]
    final = torch.log_softmax(out.logits[0, -1], -1)
    layers = []
    for l, h in enumerate(hs):
        logits = model.lm_head(model.transformer.ln_f(h[0, -1]))
        lp = torch.log_softmax(logits, -1)
        top = torch.topk(lp, 10)
        layers.append({
            "layer": l,
            "top": top.indices.tolist(),
            "entropy": float(-(lp.exp() * lp).sum()),
            "kl_to_final": float((final.exp() * (final - lp)).sum()),
        })
print(json.dumps({"import_s": t_import, "total_s": time.time() - t0, "layers": layers}))
