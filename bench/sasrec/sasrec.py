"""SASRec (Kang & McAuley, ICDM 2018), BERT4Rec (Sun et al., CIKM 2019) and GRU4Rec (Hidasi et al., ICLR 2016) on a
`sequences` log, under the protocol
`dupn train --split leave-one-out` reports, so published sequential recommenders and dupn are compared on one file,
one split, one machine.

Written for this comparison from the papers' descriptions. SASRec: causal self-attention over the last `maxlen`
items, learned positions, shared item embeddings for input and output, binary cross-entropy with one sampled
negative per position; `--loss ce` swaps the loss for a softmax over the whole catalogue (the stronger recipe of
Klenitskiy & Vasilev, RecSys 2023, "SASRec+"). BERT4Rec (`--model bert4rec`): bidirectional self-attention trained
on the cloze task (each item of a training sequence masked with probability `--mask-prob`, the masked ones
predicted by a softmax over the whole catalogue, output embeddings shared with the input plus a bias); at
prediction a [mask] token follows the history and its output is the user. Its paper's settings for Beauty: 2
layers, 2 heads, width 64, dropout 0.1, mask probability 0.6, maxlen 50, batch 256 (`--model bert4rec` takes
them as its defaults; its learning rate 1e-4 needs hundreds of epochs, replications use 1e-3: the default here).
GRU4Rec (`--model gru4rec`): one GRU layer over the item embeddings (dropout on them), its state projected to the
embedding width and scored against the same embeddings, trained on the next item at every position with a
softmax over the whole catalogue (the recipe with which Klenitskiy & Vasilev and RecBole report it; the original
session-parallel mini-batches and BPR-max loss are not reproduced): width 64, state 128, dropout 0.3.

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


    def user_vectors(self, seqs):
        """[B, D]: the output at the latest item of each left-padded history."""
        return self(seqs)[:, -1, :]

    def item_vectors(self, ids):
        return self.items(ids)


class GRU4Rec(nn.Module):
    def __init__(self, n_items, dim, hidden, dropout):
        super().__init__()
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, dim)
        nn.init.xavier_normal_(self.items.weight)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, seqs):
        """seqs: [B, L] left-padded item ids; returns [B, L, dim], each position seeing only its own history (the
        GRU runs over each row's items alone, packed, so the padding never enters its state)."""
        b, length = seqs.shape
        lengths = (seqs != 0).sum(1).clamp(min=1)
        start = length - lengths
        cols = torch.arange(length).unsqueeze(0)
        # Left-padded to right-padded and back: row r's items sit at start[r] .. length-1.
        right = torch.gather(seqs, 1, (cols + start.unsqueeze(1)).clamp(max=length - 1))
        right = right * (cols < lengths.unsqueeze(1))
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.items(right)), lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.gru(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=length)
        h = self.out(h)
        back = (cols - start.unsqueeze(1)).clamp(min=0)
        left = torch.gather(h, 1, back.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        return left * (cols >= start.unsqueeze(1)).unsqueeze(-1)

    def user_vectors(self, seqs):
        return self(seqs)[:, -1, :]

    def item_vectors(self, ids):
        return self.items(ids)


class BERT4Rec(nn.Module):
    def __init__(self, n_items, dim, maxlen, blocks, heads, dropout):
        super().__init__()
        self.mask_id = n_items + 1
        self.items = nn.Embedding(n_items + 2, dim, padding_idx=0)
        self.positions = nn.Embedding(maxlen, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=dropout, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.bias = nn.Parameter(torch.zeros(n_items + 2))
        self.maxlen = maxlen
        for name, p in self.named_parameters():
            if p.dim() > 1:
                nn.init.trunc_normal_(p, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, seqs):
        """seqs: [B, L] ids (0 pad, left), L <= maxlen → [B, L, D] outputs before the item projection."""
        length = seqs.shape[1]
        x = self.items(seqs) + self.positions(torch.arange(self.maxlen - length, self.maxlen).unsqueeze(0))
        x = self.drop(self.norm(x))
        return self.out(self.encoder(x, src_key_padding_mask=seqs == 0))

    def logits(self, h):
        """Scores of every item id (padding and the mask token included; callers mask them)."""
        return h @ self.items.weight.T + self.bias

    def user_vectors(self, seqs):
        # The history, then the mask token, whose output is the prediction (the oldest item drops out if full).
        b = seqs.shape[0]
        with_mask = torch.cat([seqs, torch.full((b, 1), self.mask_id, dtype=seqs.dtype)], 1)[:, -self.maxlen:]
        h = self(with_mask)[:, -1, :]
        return torch.cat([h, torch.ones(b, 1)], 1)

    def item_vectors(self, ids):
        # [embedding ; bias], so that the user vector's trailing 1 adds the bias in a plain dot product.
        return torch.cat([self.items(ids), self.bias[ids].unsqueeze(-1)], -1)


def cloze_batches(train, maxlen, batch, mask_prob, mask_id, rng):
    """Users batched as training_batches does; each item masked with probability mask_prob (at least one per
    sequence). Yields (inputs, labels) with label 0 where nothing is predicted."""
    for users in user_batches(train, batch, rng):
        width = min(maxlen, max(len(train[u]) for u in users))
        seqs, labels = [], []
        for u in users:
            s = train[u][-width:]
            masked = [rng.random() < mask_prob for _ in s]
            if not any(masked):
                masked[rng.randrange(len(s))] = True
            seqs.append(left_pad([mask_id if m else i for i, m in zip(s, masked)], width))
            labels.append(left_pad([i if m else 0 for i, m in zip(s, masked)], width))
        yield torch.tensor(seqs), torch.tensor(labels)


def user_batches(train, batch, rng):
    """Shuffled users; within runs of 64 batches the users are sorted by length so a batch pads only to its own
    longest sequence (Beauty's mean length is 7 of 50); the batches are shuffled again."""
    order = list(range(len(train)))
    rng.shuffle(order)
    batches = []
    for run in range(0, len(order), 64 * batch):
        chunk = sorted(order[run:run + 64 * batch], key=lambda u: len(train[u]))
        batches += [chunk[i:i + batch] for i in range(0, len(chunk), batch)]
    rng.shuffle(batches)
    return batches


def left_pad(items, maxlen):
    items = items[-maxlen:]
    return [0] * (maxlen - len(items)) + items


def training_batches(train, n_items, maxlen, batch, rng):
    """One sampled negative per position, never an item the user touched."""
    for users in user_batches(train, batch, rng):
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
        cat_vecs = model.item_vectors(cat)
        for start in range(0, len(order), batch):
            chunk = [cases[i] for i in order[start:start + batch]]
            width = min(maxlen, max(len(h) for h, _, _ in chunk))
            user = model.user_vectors(torch.tensor([left_pad(h, width) for h, _, _ in chunk]))
            targets = torch.tensor([t for _, t, _ in chunk])
            t = (model.item_vectors(targets) * user).sum(-1, keepdim=True)
            cand = torch.einsum("bnd,bd->bn", model.item_vectors(torch.tensor([n for _, _, n in chunk])), user)
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
    p.add_argument("--model", choices=["sasrec", "bert4rec", "gru4rec"], default="sasrec")
    p.add_argument("--maxlen", type=int, default=50)
    p.add_argument("--dim", type=int, help="default 50 (SASRec), 64 (BERT4Rec, GRU4Rec)")
    p.add_argument("--hidden", type=int, default=128, help="GRU4Rec: width of the GRU state")
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, help="default 1 (SASRec), 2 (BERT4Rec)")
    p.add_argument("--dropout", type=float, help="default 0.5 (SASRec), 0.1 (BERT4Rec), 0.3 (GRU4Rec)")
    p.add_argument("--mask-prob", type=float, default=0.6, help="BERT4Rec: share of training items masked")
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch", type=int, help="default 128 (SASRec, GRU4Rec), 256 (BERT4Rec)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--patience", type=int, default=3, help="evaluations without a better validation NDCG@10")
    p.add_argument("--max-minutes", type=float, default=0, help="stop training after this long (0: no limit); the test uses the best state so far")
    p.add_argument("--loss", choices=["bce", "ce"], help="SASRec and GRU4Rec: default bce (SASRec), ce (GRU4Rec)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    bert = a.model == "bert4rec"
    defaults = dict(sasrec=dict(dim=50, heads=1, dropout=0.5, batch=128, loss="bce"),
                    bert4rec=dict(dim=64, heads=2, dropout=0.1, batch=256, loss="ce"),
                    gru4rec=dict(dim=64, heads=1, dropout=0.3, batch=128, loss="ce"))[a.model]
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
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

    if a.model == "gru4rec":
        model = GRU4Rec(n_items, a.dim, a.hidden, a.dropout)
    else:
        model = (BERT4Rec if bert else SASRec)(n_items, a.dim, a.maxlen, a.blocks, a.heads, a.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.98))
    best, best_state, since, history = -1.0, None, 0, []
    started = time.time()
    for epoch in range(1, a.epochs + 1):
        total = 0.0
        for seqs, labels in (cloze_batches(train, a.maxlen, a.batch, a.mask_prob, n_items + 1, rng) if bert else ()):
            picked = labels != 0
            logits = model.logits(model(seqs)[picked])
            logits[:, 0] = -1e9
            logits[:, n_items + 1] = -1e9
            loss = F.cross_entropy(logits, labels[picked])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss)
        for seqs, pos, neg in (() if bert else training_batches(train, n_items, a.maxlen, a.batch, rng)):
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
