"""Train the logitlens demo GPT-2 on the Brown corpus (CPU, 1 thread).

See README.md in this folder for the exact command used.
"""
import argparse
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
import torch.nn.functional as F

from model import CompactGPT2

EOT = 50256
VOCAB = 50257


def build_compact_map(train, min_count):
    counts = np.bincount(train, minlength=VOCAB)
    keep = np.nonzero(counts >= min_count)[0]
    keep = keep[keep != EOT]
    keep = np.concatenate([keep, [EOT]])  # always keep <|endoftext|>
    keep.sort()
    K = len(keep)
    cmap = np.full(VOCAB, K, dtype=np.int64)  # K = bucket row
    cmap[keep] = np.arange(K)
    bucket_size = VOCAB - K
    return keep, cmap, bucket_size


@torch.no_grad()
def evaluate(model, data_c, data_raw_bucket, log_bucket, T, max_tokens=None):
    """Mean full-vocab cross-entropy (nats) over non-overlapping T-token windows."""
    model.eval()
    n = len(data_c) - 1
    if max_tokens:
        n = min(n, max_tokens)
    tot, cnt = 0.0, 0
    starts = list(range(0, n - 1, T))
    for i in range(0, len(starts), 16):
        xs, ys = [], []
        batch = starts[i:i + 16]
        L = min(T, n - batch[-1])
        for s in batch:
            l = min(T, n - s)
            if l != L:
                continue
            xs.append(data_c[s:s + l]); ys.append(data_c[s + 1:s + 1 + l])
        if xs:
            x = torch.from_numpy(np.stack(xs)); y = torch.from_numpy(np.stack(ys))
            logits = model(x)
            ce = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), reduction="none")
            ce = ce + (y.view(-1) == model.n_compact - 1).float() * log_bucket
            tot += ce.sum().item(); cnt += ce.numel()
        for s in batch:  # ragged leftovers one by one
            l = min(T, n - s)
            if l == L or l <= 0:
                continue
            x = torch.from_numpy(data_c[s:s + l][None]); y = torch.from_numpy(data_c[s + 1:s + 1 + l][None])
            logits = model(x)
            ce = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), reduction="none")
            ce = ce + (y.view(-1) == model.n_compact - 1).float() * log_bucket
            tot += ce.sum().item(); cnt += ce.numel()
    model.train()
    return tot / cnt, cnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/demo-data")
    ap.add_argument("--out", default="/work/demo-ckpt")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=112)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-positions", type=int, default=128)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--bench", type=int, default=0, help="only time this many steps and exit")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train = np.fromfile(os.path.join(args.data, "train.bin"), dtype=np.uint16).astype(np.int64)
    held = np.fromfile(os.path.join(args.data, "heldout.bin"), dtype=np.uint16).astype(np.int64)
    keep, cmap, bucket_size = build_compact_map(train, args.min_count)
    train_c = cmap[train]
    held_c = cmap[held]
    K = len(keep)
    print(f"train tokens {len(train)} heldout {len(held)} compact rows {K}+1 bucket_size {bucket_size}", flush=True)

    model = CompactGPT2(args.n_layer, args.n_embd, args.n_head, args.n_positions, K + 1, bucket_size)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params (compact) {n_params}", flush=True)

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        prog = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))

    os.makedirs(args.out, exist_ok=True)
    T, B = args.seq, args.batch
    hist = []
    t0 = time.time()
    ema = None
    log_bucket = math.log(bucket_size)
    for step in range(args.steps):
        ix = rng.integers(0, len(train_c) - T - 1, size=B)
        x = torch.from_numpy(np.stack([train_c[i:i + T] for i in ix]))
        y = torch.from_numpy(np.stack([train_c[i + 1:i + 1 + T] for i in ix]))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # compact CE differs from full-vocab CE only on bucket targets (+log bucket_size)
        full = loss.item() + (y == K).float().mean().item() * log_bucket
        ema = full if ema is None else 0.98 * ema + 0.02 * full
        if args.bench and step + 1 == args.bench:
            dt = time.time() - t0
            print(f"bench: {args.bench} steps {dt:.1f}s -> {dt/args.bench:.3f}s/step, {args.bench*B*T/dt:.0f} tok/s")
            return
        if step % 50 == 0:
            el = time.time() - t0
            print(f"step {step} loss {full:.4f} ema {ema:.4f} lr {lr_at(step):.2e} elapsed {el:.0f}s "
                  f"{(step+1)*B*T/el:.0f} tok/s", flush=True)
        last = step + 1 == args.steps
        if (step + 1) % args.eval_every == 0 or last:
            hl, n = evaluate(model, held_c, None, log_bucket, T, None if last else args.eval_tokens)
            rec = {"step": step + 1, "tokens": (step + 1) * B * T, "train_ema": ema, "heldout_ce": hl,
                   "heldout_ppl": math.exp(hl), "heldout_eval_tokens": n, "elapsed_s": time.time() - t0}
            hist.append(rec)
            print("EVAL", json.dumps(rec), flush=True)
        if (step + 1) % args.ckpt_every == 0 or last:
            torch.save({"model": model.state_dict(), "keep": keep, "bucket_size": bucket_size,
                        "args": vars(args), "step": step + 1, "hist": hist},
                       os.path.join(args.out, "ckpt.pt.tmp"))
            os.replace(os.path.join(args.out, "ckpt.pt.tmp"), os.path.join(args.out, "ckpt.pt"))
    print(f"done in {time.time()-t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
