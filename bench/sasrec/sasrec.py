"""SASRec (Kang & McAuley, ICDM 2018) on a `sequences` log, under the protocol `dupn train --split leave-one-out`
reports, so the published sequential recommender and dupn are compared on one file, one split, one machine.

Written for this comparison from the paper's description (causal self-attention over the last `maxlen` items,
learned positions, shared item embeddings for input and output, binary cross-entropy with one sampled negative
per position). `--loss ce` swaps the loss for a softmax over the whole catalogue (the stronger recipe of
Klenitskiy & Vasilev, RecSys 2023, "SASRec+").

Protocol (the one docs/real-data.md states for dupn): each user's last item is the test case, the second-last
the validation case, the rest trains. The catalogue is the items of the training part. Full catalogue: the true
item ranked among every catalogue item, nothing masked (dupn's table masks nothing either); cases whose item is
not in the catalogue are left out. Sampled: the true item among 100 catalogue items drawn uniformly that the user
did not touch before the cut or in the label. Early stopping on validation NDCG@10 (sampled).

    /usr/bin/python3 bench/sasrec/sasrec.py --data Beauty.txt --out result.json
"""

import argparse
import json
import math
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def read_sequences(path):
    users = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                users.append([int(x) for x in parts[1:]])
    return users


class SASRec(nn.Module):
    def __init__(self, n_items, dim, maxlen, blocks, heads, dropout):
        super().__init__()
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(maxlen, dim)
        self.drop = nn.Dropout(dropout)
        self.attn_norms = nn.ModuleList([nn.LayerNorm(dim, eps=1e-8) for _ in range(blocks)])
        self.attns = nn.ModuleList([nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True) for _ in range(blocks)])
        self.ffn_norms = nn.ModuleList([nn.LayerNorm(dim, eps=1e-8) for _ in range(blocks)])
        self.ffns = nn.ModuleList([
            nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout), nn.ReLU(), nn.Linear(dim, dim), nn.Dropout(dropout))
            for _ in range(blocks)
        ])
        self.last_norm = nn.LayerNorm(dim, eps=1e-8)
        self.dim = dim
        self.maxlen = maxlen
        # Xavier-normal weights as the reference implementations use (torch's default N(0, 1) embeddings, times
        # sqrt(dim) at the input, start the logits far out and BCE training stalls: test HR@10 of 101 0.369
        # after 200 epochs on Beauty).
        for name, p in self.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, seqs):
        """seqs: [B, L] item ids, left-padded with 0, L <= maxlen; the last column is the latest item."""
        b, length = seqs.shape
        x = self.items(seqs) * math.sqrt(self.dim)
        x = x + self.positions(torch.arange(self.maxlen - length, self.maxlen).unsqueeze(0))
        x = self.drop(x)
        pad = seqs == 0
        keep = (~pad).unsqueeze(-1).float()
        x = x * keep
        # Causal, and padding is never attended to; a padded query may see itself so its row is never empty (its
        # output is zeroed below).
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
        mask = causal.unsqueeze(0) | pad.unsqueeze(1)
        mask = mask & ~torch.eye(length, dtype=torch.bool).unsqueeze(0)
        mask = mask.repeat_interleave(self.attns[0].num_heads, dim=0)
        for norm, attn, fnorm, ffn in zip(self.attn_norms, self.attns, self.ffn_norms, self.ffns):
            q = norm(x)
            out, _ = attn(q, x, x, attn_mask=mask, need_weights=False)
            x = q + out
            x = fnorm(x)
            x = x + ffn(x)
            x = x * keep
        return self.last_norm(x)


def left_pad(items, maxlen):
    items = items[-maxlen:]
    return [0] * (maxlen - len(items)) + items


def training_batches(train, n_items, maxlen, batch, rng):
    """Shuffled users; within runs of 64 batches the users are sorted by length so a batch pads only to its own
    longest sequence (Beauty's mean length is 7 of 50); the batches are shuffled again."""
    order = list(range(len(train)))
    rng.shuffle(order)
    batches = []
    for run in range(0, len(order), 64 * batch):
        chunk = sorted(order[run:run + 64 * batch], key=lambda u: len(train[u]))
        batches += [chunk[i:i + batch] for i in range(0, len(chunk), batch)]
    rng.shuffle(batches)
    for users in batches:
        width = min(maxlen, max(len(train[u]) - 1 for u in users))
        seqs, pos, neg = [], [], []
        for u in users:
            s = train[u]
            touched = set(s)
            inp, out = left_pad(s[:-1], width), left_pad(s[1:], width)
            negs = []
            for o in out:
                if o == 0:
                    negs.append(0)
                    continue
                n = rng.randint(1, n_items)
                while n in touched:
                    n = rng.randint(1, n_items)
                negs.append(n)
            seqs.append(inp), pos.append(out), neg.append(negs)
        yield torch.tensor(seqs), torch.tensor(pos), torch.tensor(neg)


def evaluate(model, cases, catalogue, maxlen, batch=256):
    """cases: (history, target, 100 sampled negatives). Returns the mean metrics over the cases."""
    model.eval()
    cat = torch.tensor(catalogue)
    in_catalogue = set(catalogue)
    sums = dict(hr20=0.0, mrr20=0.0, ndcg20=0.0, hr10s=0.0, ndcg10s=0.0)
    warm = 0
    order = sorted(range(len(cases)), key=lambda i: len(cases[i][0]))
    with torch.no_grad():
        cat_vecs = model.items(cat)
        for start in range(0, len(order), batch):
            chunk = [cases[i] for i in order[start:start + batch]]
            width = min(maxlen, max(len(h) for h, _, _ in chunk))
            user = model(torch.tensor([left_pad(h, width) for h, _, _ in chunk]))[:, -1, :]
            targets = torch.tensor([t for _, t, _ in chunk])
            t = (model.items(targets) * user).sum(-1, keepdim=True)
            cand = torch.einsum("bnd,bd->bn", model.items(torch.tensor([n for _, _, n in chunk])), user)
            rank = (cand > t).sum(-1).double() + 0.5 * (cand == t).sum(-1).double()
            hit = rank < 10
            sums["hr10s"] += float(hit.sum())
            sums["ndcg10s"] += float((1 / torch.log2(rank + 2))[hit].sum())
            full = (user @ cat_vecs.T > t).sum(-1).double()
            is_warm = torch.tensor([tt in in_catalogue for _, tt, _ in chunk])
            warm += int(is_warm.sum())
            top = is_warm & (full < 20)
            sums["hr20"] += float(top.sum())
            sums["mrr20"] += float((1 / (full + 1))[top].sum())
            sums["ndcg20"] += float((1 / torch.log2(full + 2))[top].sum())
    model.train()
    n = max(len(cases), 1)
    return dict(
        hr20=sums["hr20"] / max(warm, 1), mrr20=sums["mrr20"] / max(warm, 1), ndcg20=sums["ndcg20"] / max(warm, 1),
        hr10_of_101=sums["hr10s"] / n, ndcg10_of_101=sums["ndcg10s"] / n, cases=len(cases), warm=warm,
    )


def sampled_negatives(catalogue, touched, rng, count=100):
    negs = []
    while len(negs) < count:
        c = catalogue[rng.randrange(len(catalogue))]
        if c not in touched:
            negs.append(c)
    return negs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out")
    p.add_argument("--maxlen", type=int, default=50)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--patience", type=int, default=3, help="evaluations without a better validation NDCG@10")
    p.add_argument("--max-minutes", type=float, default=0, help="stop training after this long (0: no limit); the test uses the best state so far")
    p.add_argument("--loss", choices=["bce", "ce"], default="bce")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)

    users = [s for s in read_sequences(a.data) if len(s) >= 3]
    n_items = max(max(s) for s in users)
    train = [s[:-2] for s in users]
    catalogue = sorted({i for s in train for i in s})
    valid = [(s[:-2], s[-2], sampled_negatives(catalogue, set(s[:-1]), rng)) for s in users]
    test = [(s[:-1], s[-1], sampled_negatives(catalogue, set(s), rng)) for s in users]
    train = [s for s in train if len(s) >= 2]
    print(f"{len(users)} users, {n_items} item ids, catalogue {len(catalogue)}, {sum(map(len, train))} training items",
          file=sys.stderr)

    model = SASRec(n_items, a.dim, a.maxlen, a.blocks, a.heads, a.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.98))
    best, best_state, since, history = -1.0, None, 0, []
    started = time.time()
    for epoch in range(1, a.epochs + 1):
        total = 0.0
        for seqs, pos, neg in training_batches(train, n_items, a.maxlen, a.batch, rng):
            feats = model(seqs)
            mask = pos != 0
            if a.loss == "bce":
                pl = (feats * model.items(pos)).sum(-1)
                nl = (feats * model.items(neg)).sum(-1)
                loss = (F.binary_cross_entropy_with_logits(pl[mask], torch.ones_like(pl[mask]))
                        + F.binary_cross_entropy_with_logits(nl[mask], torch.zeros_like(nl[mask])))
            else:
                logits = feats[mask] @ model.items.weight.T
                logits[:, 0] = -1e9
                loss = F.cross_entropy(logits, pos[mask])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss)
        out_of_time = a.max_minutes > 0 and time.time() - started > 60 * a.max_minutes
        if epoch % a.eval_every == 0 or epoch == a.epochs or out_of_time:
            v = evaluate(model, valid, catalogue, a.maxlen)
            history.append(dict(epoch=epoch, seconds=round(time.time() - started), loss=total, valid=v))
            print(json.dumps(history[-1]), file=sys.stderr)
            if v["ndcg10_of_101"] > best:
                best, since = v["ndcg10_of_101"], 0
                best_state = {k: t.clone() for k, t in model.state_dict().items()}
            else:
                since += 1
                if since >= a.patience:
                    break
            if out_of_time:
                history[-1]["stopped"] = "out of time"
                break
    model.load_state_dict(best_state)
    result = dict(args=vars(a), history=history, test=evaluate(model, test, catalogue, a.maxlen),
                  seconds=round(time.time() - started))
    print(json.dumps(result["test"]))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
