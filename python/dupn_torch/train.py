"""`python3 -m dupn_torch train`: trains a dupn model on `dupn shards` output, on one process or as a
DistributedDataParallel job under torchrun (gloo, on CPUs; GPUs and NCCL are not wired up yet), and writes a
dupn model file.

Optimizers as dupn's defaults: Adam for the dense weights (lr 0.005, gradient norm clipped at 5), row-wise
Adagrad on the sparse gradients of the embedding tables (lr 0.2; rowwise.py; `embedding_optimizer="adam"` takes
lazy Adam, SparseAdam, lr 0.05, as `dupn train --embedding-optimizer adam`). As `dupn train`, the model file holds
the exponential moving average of the weights (decay 0.999 per step with TensorFlow's warm-up; average.py;
`average_decay=0` writes the last step's weights). Rank 0 writes the model and the checkpoint after every
epoch, each to a temporary file renamed into place.
"""
from __future__ import annotations

import os
import time
from typing import Optional

import torch
import torch.distributed as dist

from .average import WeightAverage
from .config import is_statistic, tensor_specs
from .loss import LossModule
from .model_file import load_model, save_model
from .rowwise import RowwiseAdagrad
from .shards import Shards

EMBEDDING_OPTIMIZERS = ("rowwise-adagrad", "adam")


def default_embedding_lr(optimizer: str) -> float:
    """As dupn's defaultEmbeddingLearningRate: 0.2 for row-wise Adagrad, 0.05 for lazy Adam."""
    return 0.2 if optimizer == "rowwise-adagrad" else 0.05


def _save_atomic(obj, path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save(obj, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def train(shards_dir: str, out: str, init: Optional[str] = None, epochs: int = 1, lr: float = 0.005,
          embedding_lr: Optional[float] = None, clip_norm: float = 5.0, seed: int = 1, checkpoint: Optional[str] = None,
          resume: bool = False, threads: Optional[int] = None, max_steps: Optional[int] = None, average_decay: float = 0.999,
          embedding_optimizer: str = "rowwise-adagrad", log=print) -> dict:
    if not 0 <= average_decay < 1:
        raise ValueError(f"average_decay must be in [0, 1), got {average_decay}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    torch.set_num_threads(threads or max(1, cores // max(1, local)))
    torch.manual_seed(seed)

    shards = Shards(shards_dir)
    net = load_model(init or shards.init)
    if tensor_specs(net.config) != tensor_specs(shards.config):
        raise ValueError(f"{init}: its tensors do not match the config the shards were packed for ({shards_dir}/index.json)")
    net.config = shards.config
    module = LossModule(net, shards.heads)
    # A head with λ = 0, or without labels in a batch (a batch with no purchase has no price-level label), leaves
    # its weights out of that step's graph: DDP must look for unused parameters.
    model = torch.nn.parallel.DistributedDataParallel(module, find_unused_parameters=True, broadcast_buffers=False) if distributed else module
    dense_opt = torch.optim.Adam(net.dense_parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    if embedding_optimizer not in EMBEDDING_OPTIMIZERS:
        raise ValueError(f"embedding_optimizer: must be one of {', '.join(EMBEDDING_OPTIMIZERS)}, got {embedding_optimizer!r}")
    if embedding_lr is None:
        embedding_lr = default_embedding_lr(embedding_optimizer)
    # Row-wise where dupn keeps it: tables more than one value wide; the others lazy Adam.
    wide, narrow = [], []
    for t in net.embedding_parameters():
        (wide if embedding_optimizer == "rowwise-adagrad" and t.dim() == 2 and t.shape[1] > 1 else narrow).append(t)
    sparse_opts = ([RowwiseAdagrad(wide, lr=embedding_lr, eps=1e-8)] if wide else []) + \
        ([torch.optim.SparseAdam(narrow, lr=embedding_lr, betas=(0.9, 0.999), eps=1e-8)] if narrow else [])

    mine = shards.rank_shards(rank, world)
    # Every rank takes the same number of steps (the collectives must pair up): the smallest share.
    steps_per_epoch = min(shards.batch_count(shards.rank_shards(r, world)) for r in range(world))
    if steps_per_epoch == 0:
        raise ValueError(f"{shards_dir}: {len(shards.shards)} shards for {world} ranks leave a rank with no batch (write at least {world} shards)")
    checkpoint = checkpoint or f"{out}.ckpt"
    start_epoch, skip, step = 0, 0, 0
    averaged = None
    if resume and os.path.exists(checkpoint):
        state = torch.load(checkpoint)
        if state.get("world") != world:
            raise ValueError(f"{checkpoint}: written by a job of {state.get('world')} ranks, this one has {world}")
        net.load_tensors(state["tensors"])
        if state.get("embedding_optimizer", "adam") != embedding_optimizer:
            raise ValueError(f"{checkpoint}: written with embedding optimizer {state.get('embedding_optimizer', 'adam')}, "
                             f"this run uses {embedding_optimizer}")
        dense_opt.load_state_dict(state["dense_opt"])
        # A checkpoint from before row-wise Adagrad holds its one SparseAdam as "sparse_opt".
        for opt, saved in zip(sparse_opts, state.get("sparse_opts") or [state["sparse_opt"]]):
            opt.load_state_dict(saved)
        start_epoch, skip, step = state["epoch"], state["batch"], state["step"]
        averaged = state.get("average")
        if rank == 0:
            log(f"resumed from {checkpoint}: step {step}, epoch {start_epoch + 1}, {skip} batches done in it")
    # A resumed run that averaged continues its averages; one that did not starts them at its weights.
    tables = [(n, net.t(n)) for n in net.specs if n.startswith("emb.") and net.t(n).numel() > 0]
    dense = [(n, net.t(n)) for n in net.specs if not n.startswith("emb.") and not is_statistic(n)]
    average = WeightAverage(dense, tables, average_decay, step, averaged) if average_decay > 0 else None

    def save_state(epoch: int, batch: int) -> None:
        _save_atomic({"tensors": net.tensors(), "dense_opt": dense_opt.state_dict(),
                      "sparse_opts": [opt.state_dict() for opt in sparse_opts], "embedding_optimizer": embedding_optimizer,
                      "epoch": epoch, "batch": batch, "step": step, "world": world,
                      "average": average.state() if average is not None else None}, checkpoint)

    def save_weights() -> None:
        save_model(net, out, replace=average.current() if average is not None else None)

    report = {"epochs": [], "ranks": world}
    for epoch in range(start_epoch, epochs):
        t0 = time.time()
        examples = 0
        loss_sum = 0.0
        done = 0
        position = skip if epoch == start_epoch else 0  # batches of this epoch done, earlier runs' included
        stopped = False
        for k, batch in enumerate(shards.batches(mine, order_seed=seed * 100_003 + epoch)):
            if k >= steps_per_epoch:
                break
            if k < position:
                continue
            if max_steps is not None and step >= max_steps:
                stopped = True
                break
            loss, _ = model(batch)
            dense_opt.zero_grad(set_to_none=True)
            for opt in sparse_opts:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(net.dense_parameters(), clip_norm)
            if average is not None:
                average.before_step()
            dense_opt.step()
            for opt in sparse_opts:
                opt.step()
            if average is not None:
                average.after_step()
            step += 1
            done += 1
            position = k + 1
            examples += batch.examples
            loss_sum += float(loss)
        seconds = time.time() - t0
        total = torch.tensor([examples, loss_sum, done], dtype=torch.float64)
        if distributed:
            dist.all_reduce(total)
        if stopped or position < steps_per_epoch:
            # Stopped inside the epoch (--max-steps): the checkpoint records how far, for --resume.
            if rank == 0:
                save_weights()
                save_state(epoch, position)
            break
        row = {"epoch": epoch + 1, "examples": int(total[0]), "seconds": seconds, "loss": float(total[1] / max(1, total[2])),
               "examples_per_second": float(total[0]) / max(seconds, 1e-9)}
        report["epochs"].append(row)
        if rank == 0:
            log(f"epoch {epoch + 1}/{epochs}: {row['examples']} examples on {world} rank{'s' if world > 1 else ''}, "
                f"{seconds:.1f} s ({row['examples_per_second']:.0f} users/s), train loss {row['loss']:.4f}")
            save_weights()
            save_state(epoch + 1, 0)
    if rank == 0:
        log(f"saved {out} ({step} steps)")
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return report
