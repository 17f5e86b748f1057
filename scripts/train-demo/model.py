"""A minimal GPT-2 (HF GPT2LMHeadModel semantics) in plain torch.

Pre-LN blocks, gelu_new (tanh approximation), causal attention scaled by
1/sqrt(head_dim), LayerNorm eps from config, learned absolute positions, tied
unembedding without bias. Linear weights are kept as torch [out, in]; export
transposes them to HF Conv1D's [in, out].

Training uses a *compact* tied embedding: rows for the K token ids that occur at
least `min_count` times in the training split, plus one shared row (the
"bucket") used for every other id. The softmax over the compact table adds
log(bucket_size) to the bucket logit, which is exactly the full 50,257-way
softmax of the exported model in which all bucket ids share that row.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(nn.Module):
    def __init__(self, d, n_head, eps):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        B, T, C = x.shape
        h = self.ln_1(x)
        q, k, v = self.c_attn(h).split(C, dim=2)
        hd = C // self.n_head
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(hd))
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.attn_proj(y)
        x = x + self.mlp_proj(gelu_new(self.c_fc(self.ln_2(x))))
        return x


class CompactGPT2(nn.Module):
    def __init__(self, n_layer, n_embd, n_head, n_positions, n_compact, bucket_size, eps=1e-5):
        super().__init__()
        self.n_compact = n_compact  # number of compact rows incl. the bucket row (last)
        self.log_bucket = math.log(bucket_size)
        self.wte = nn.Embedding(n_compact, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, eps) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)
        self.apply(self._init)
        for blk in self.h:
            for p in (blk.attn_proj.weight, blk.mlp_proj.weight):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def hidden(self, idx, all_layers=False):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        states = [x]
        for blk in self.h:
            x = blk(x)
            states.append(x)
        return states if all_layers else x

    def compact_logits(self, resid):
        """ln_f + tied unembedding over the compact table; bucket logit gets +log(bucket_size)."""
        h = self.ln_f(resid)
        logits = h @ self.wte.weight.t()
        bias = torch.zeros(self.n_compact, dtype=logits.dtype)
        bias[-1] = self.log_bucket
        return logits + bias

    def forward(self, idx, targets=None):
        logits = self.compact_logits(self.hidden(idx))
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
