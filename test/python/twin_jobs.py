"""Test driver of test/torch-twin.test.ts: runs many parity jobs in one Python process (torch imports once).

Reads a JSON list of jobs from argv[1] and writes their results to argv[2]. A job names a model file and user
columns, and asks for U and attention, each task's scores against candidates, multiclass probabilities, and
optionally a few SGD steps on the torch module first (the model is then saved for dupn to serve).
"""
import json
import sys

import torch

from dupn_torch import load_model, save_model
from dupn_torch.loss import LossModule
from dupn_torch.shards import Shards


def batch_loss(job):
    """The loss of one shard batch under the model, per head, as dupn's trainer reports it before its step."""
    shards = Shards(job["shards"])
    net = load_model(job["model"])
    batch = next(iter(shards.batches([job["shard"]])))
    with torch.no_grad():
        loss, parts = LossModule(net, shards.heads)(batch)
    return {"loss": float(loss), "heads": parts, "examples": batch.examples}


def run(job):
    if "shards" in job:
        return batch_loss(job)
    net = load_model(job["model"])
    cols = {k: torch.tensor(v, dtype=torch.long) for k, v in job["columns"].items()}
    nF = len(net.config["itemFields"])
    if job.get("train_steps"):
        # Any differentiable loss will do: the point is that torch-moved weights serve the same in dupn.
        opt_dense = torch.optim.Adam(net.dense_parameters(), lr=0.05)
        opt_emb = torch.optim.SparseAdam(net.embedding_parameters(), lr=0.05)
        for _ in range(job["train_steps"]):
            U, _ = net.encode(cols)
            loss = (U ** 2).mean()
            for t in net.config["tasks"]:
                if t["kind"] == "multiclass":
                    loss = loss + net.predict(t["name"], U)[:, 0].mean()
                else:
                    spec = job["tasks"][t["name"]]
                    items = torch.tensor(spec["items"], dtype=torch.long).view(-1, nF)
                    dense = torch.tensor(spec["dense"], dtype=U.dtype).view(items.shape[0], -1)
                    loss = loss + net.score(t["name"], U, items, dense).mean()
            net.zero_grad()
            loss.backward()
            opt_dense.step()
            opt_emb.step()
        save_model(net, job["save"])
    with torch.no_grad():
        U, attention = net.encode(cols)
        out = {"U": U.flatten().tolist(), "attention": attention.tolist(), "scores": {}, "probabilities": {}}
        for name, spec in job.get("tasks", {}).items():
            task = net.task(name)
            if task["kind"] == "multiclass":
                out["probabilities"][name] = net.predict(name, U).flatten().tolist()
            else:
                items = torch.tensor(spec["items"], dtype=torch.long).view(-1, nF)
                dense = torch.tensor(spec["dense"], dtype=U.dtype).view(items.shape[0], -1)
                out["scores"][name] = net.score(name, U, items, dense).tolist()
    return out


def main():
    with open(sys.argv[1]) as fh:
        jobs = json.load(fh)
    results = [run(job) for job in jobs]
    with open(sys.argv[2], "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main()
