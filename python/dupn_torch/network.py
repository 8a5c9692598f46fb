"""The DUPN network of docs/model.md as a torch.nn.Module over dupn's tensors, names and column layout.

Parameters keep dupn's names (`emb.item.item`, `lstm.fw.wx`, `head.ctr.0.w`, …) through `tensors()` and
`load_tensors()`, so a file goes dupn → torch → dupn unchanged. Embedding lookups use sparse gradients
(`F.embedding(..., sparse=True)`, `F.embedding_bag` for the query mean), as large-table trainers do.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .config import ConfigError, check_resolved, dense_count, dims, history_field, is_statistic, item_field, layer_stacks, tensor_specs

Columns = Dict[str, torch.Tensor]
COLUMN_NAMES = ("lengths", "items", "properties", "queryOffsets", "queryTokens", "profile")


def _key(name: str) -> str:
    # ParameterDict keys cannot hold dots; "/" cannot appear in a dupn name (names are [A-Za-z0-9_-]).
    return name.replace(".", "/")


class DupnNet(torch.nn.Module):
    """The whole model: `encode` (behaviours → U and attention), `logits` / `score` (heads), `predict` (multiclass)."""

    def __init__(self, config: dict, tensors: Optional[Dict[str, torch.Tensor]] = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.config = check_resolved(config)
        self.dims = dims(config)
        self.specs = tensor_specs(config)
        self.params = torch.nn.ParameterDict()
        # Embedding tables live in nn.Embedding modules (sparse=True) because that is how DistributedDataParallel
        # learns which parameters get sparse gradients; lookups still go through F.embedding on their weight.
        self.tables = torch.nn.ModuleDict()
        for name, shape in self.specs.items():
            if is_statistic(name):
                self.register_buffer(_key(name).replace("/", "_"), torch.zeros(shape, dtype=dtype))
            elif name.startswith("emb."):
                self.tables[_key(name)] = torch.nn.Embedding(shape[0], shape[1], sparse=True, _weight=torch.zeros(shape, dtype=dtype))
            else:
                self.params[_key(name)] = torch.nn.Parameter(torch.zeros(shape, dtype=dtype))
        if tensors is not None:
            self.load_tensors(tensors)

    # ---- tensors by dupn name -------------------------------------------------------------------------------

    def t(self, name: str) -> torch.Tensor:
        if is_statistic(name):
            return getattr(self, _key(name).replace("/", "_"))
        if name.startswith("emb."):
            return self.tables[_key(name)].weight
        return self.params[_key(name)]

    def load_tensors(self, tensors: Dict[str, torch.Tensor]) -> None:
        """Copies every tensor of the config from `tensors`; a missing, extra or misshapen one is an error."""
        extra = sorted(set(tensors) - set(self.specs))
        if extra:
            raise ConfigError(f'tensor "{extra[0]}" is not part of this config')
        with torch.no_grad():
            for name, shape in self.specs.items():
                if name not in tensors:
                    raise ConfigError(f'missing tensor "{name}"')
                src = tensors[name]
                if tuple(src.shape) != shape:
                    raise ConfigError(f'tensor "{name}": shape {list(src.shape)} does not match the config, expected {list(shape)}')
                self.t(name).copy_(src)

    def embedding_parameters(self) -> List[torch.nn.Parameter]:
        """The embedding tables (`emb.*`): their gradients are sparse (SparseAdam, Adagrad or SGD)."""
        return [self.tables[_key(n)].weight for n in self.specs if n.startswith("emb.")]

    def dense_parameters(self) -> List[torch.nn.Parameter]:
        """Every other trained tensor (LSTM, attention, heads): dense gradients (Adam)."""
        return [self.params[_key(n)] for n in self.specs if not n.startswith("emb.") and not is_statistic(n)]

    def tensors(self) -> Dict[str, torch.Tensor]:
        """Every tensor under its dupn name, in canonical order, as float32 on the CPU."""
        return {name: self.t(name).detach().to("cpu", torch.float32) for name in self.specs}

    # ---- user part --------------------------------------------------------------------------------------------

    def _lstm(self, direction: str, pre_in: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One direction over [B, T] steps already in its own order; padded steps leave the state as it was."""
        H = self.dims.hidden
        wh = self.t(f"lstm.{direction}.wh")
        B, T, _ = pre_in.shape
        h = pre_in.new_zeros(B, H)
        c = pre_in.new_zeros(B, H)
        outs = []
        for step in range(T):
            g = pre_in[:, step] + h @ wh.t()
            i, f, cand, o = g.split(H, dim=1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cand)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            m = mask[:, step].unsqueeze(1)
            h = torch.where(m, h_new, h)
            c = torch.where(m, c_new, c)
            outs.append(h_new)
        return torch.stack(outs, dim=1) if outs else pre_in.new_zeros(B, 0, H)

    def _gate_inputs(self, direction: str, e: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """W_x e_t + W_p p_t (gates i, f, o only) + b for every step: [B, T, 4H]."""
        H = self.dims.hidden
        pre = e @ self.t(f"lstm.{direction}.wx").t() + self.t(f"lstm.{direction}.b")
        if self.dims.dp > 0:
            gp = p @ self.t(f"lstm.{direction}.wp").t()
            zero = gp.new_zeros(gp.shape[:-1] + (H,))
            pre = pre + torch.cat([gp[..., : 2 * H], zero, gp[..., 2 * H :]], dim=-1)
        return pre

    def encode(self, cols: Columns) -> Tuple[torch.Tensor, torch.Tensor]:
        """U [B, userDim] and the attention weights [B, T] (0 on padding) of users in dupn's columns."""
        c = self.config
        d = self.dims
        lengths = cols["lengths"].long()
        B = lengths.shape[0]
        T = int(lengths.max()) if B > 0 else 0
        nF = len(c["itemFields"])
        steps = torch.arange(T)
        mask = steps.unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        starts = torch.cumsum(lengths, 0) - lengths
        # Row 0 of the padded gather is a dummy behaviour (id 0 everywhere), so padding reads a valid row.
        rows = torch.where(mask, starts.unsqueeze(1) + steps + 1, torch.zeros_like(mask, dtype=torch.long))
        items = torch.cat([torch.zeros(1, nF, dtype=torch.long), cols["items"].long().view(-1, nF)])[rows]
        props = torch.cat([torch.zeros(1, 3, dtype=torch.long), cols["properties"].long().view(-1, 3)])[rows]

        parts = [F.embedding(items[..., fi], self.t(f"emb.item.{f['name']}"), sparse=True)
                 for fi, f in enumerate(c["itemFields"]) if f["dim"] > 0]
        e = torch.cat(parts, dim=-1)
        pr = c["properties"]
        pparts = [F.embedding(props[..., k], self.t(f"emb.prop.{name}"), sparse=True)
                  for k, (name, dim) in enumerate((("type", pr["typeDim"]), ("gap", pr["gapDim"]), ("scene", pr["sceneDim"])))
                  if dim > 0]
        p = torch.cat(pparts, dim=-1) if pparts else e.new_zeros(B, T, 0)

        fw = self._lstm("fw", self._gate_inputs("fw", e, p), mask)
        hs = [fw]
        if d.directions == 2:
            # The backward direction reads each user's valid steps last to first: reverse within the length.
            rev = torch.where(mask, lengths.unsqueeze(1) - 1 - steps, steps.expand(B, T))
            pre = self._gate_inputs("bw", e, p).gather(1, rev.unsqueeze(-1).expand(B, T, 4 * d.hidden))
            bw = self._lstm("bw", pre, mask).gather(1, rev.unsqueeze(-1).expand(B, T, d.hidden))
            hs.append(bw)
        Hs = torch.cat(hs, dim=-1)

        if c["query"]:
            offsets = cols["queryOffsets"].long()
            tokens = cols["queryTokens"].long()
            if tokens.numel() > 0:
                q = F.embedding_bag(tokens, self.t("emb.query"), offsets[:-1], mode="mean", sparse=True)
            else:
                # No tokens in the batch (a log has no queries): q = 0, still through a sparse lookup, because
                # embedding_bag's gradient of an empty input has the wrong shape for the sparse optimizers and
                # DDP needs every rank's gradients to cover the same tables.
                q = F.embedding(torch.zeros(B, dtype=torch.long), self.t("emb.query"), sparse=True) * 0.0
            if q.shape[0] != B:  # embedding_bag drops nothing, but guard the layout
                raise ConfigError("columns: queryOffsets must have B + 1 entries")
        else:
            q = e.new_zeros(B, 0)
        nP = len(c["profileFields"])
        profile = cols["profile"].long().view(B, nP) if nP else torch.zeros(B, 0, dtype=torch.long)
        uparts = [F.embedding(profile[:, k], self.t(f"emb.profile.{f['name']}"), sparse=True)
                  for k, f in enumerate(c["profileFields"]) if f["dim"] > 0]
        u = torch.cat(uparts, dim=-1) if uparts else e.new_zeros(B, 0)

        z = torch.cat([Hs, q.unsqueeze(1).expand(B, T, d.dq), u.unsqueeze(1).expand(B, T, d.du), p], dim=-1)
        s = torch.tanh(z @ self.t("attn.w").t() + self.t("attn.b")) @ self.t("attn.v")
        # Masked softmax; a user with no behaviours gets no weights and r = 0 (no NaN).
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
        a = torch.softmax(s, dim=1) * mask
        r = (a.unsqueeze(-1) * Hs).sum(dim=1)
        return torch.cat([r, u, q], dim=-1), a

    # ---- heads ----------------------------------------------------------------------------------------------

    def task(self, name: str) -> dict:
        for t in self.config["tasks"]:
            if t["name"] == name:
                return t
        raise ConfigError(f"task: unknown task {name!r} (tasks: {', '.join(t['name'] for t in self.config['tasks'])})")

    def _mlp(self, stem: str, depth: int, x: torch.Tensor) -> torch.Tensor:
        for k in range(depth):
            x = x @ self.t(f"{stem}.{k}.w").t() + self.t(f"{stem}.{k}.b")
            if k + 1 < depth:
                x = torch.relu(x)
        return x

    def _target(self, task: dict, cand_items: torch.Tensor) -> torch.Tensor:
        """t: the target fields' rows of each candidate, concatenated in target order. cand_items [..., F]."""
        names = [f["name"] for f in self.config["itemFields"]]
        parts = [F.embedding(cand_items[..., names.index(n)].long(), self.t(f"emb.item.{n}"), sparse=True)
                 for n in task["target"] if item_field(self.config, n)["dim"] > 0]
        return torch.cat(parts, dim=-1) if parts else cand_items.new_zeros(cand_items.shape[:-1] + (0,), dtype=self.t("attn.v").dtype)

    def logits(self, name: str, user: torch.Tensor, cand_items: torch.Tensor, dense: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Raw outputs for paired rows: user [M, userDim], cand_items [M, F], dense [M, D] → [M].

        binary and rank: the last layer's logit; retrieval: ⟨user tower(U), item tower(t)⟩ + w·h.
        """
        task = self.task(name)
        D = dense_count(task)
        if dense is None:
            dense = user.new_zeros(user.shape[0], D)
        if task["kind"] == "retrieval":
            (ustem, uw), (istem, iw) = layer_stacks(self.config, task)
            s = (self._mlp(ustem, len(uw) - 1, user) * self._mlp(istem, len(iw) - 1, self._target(task, cand_items))).sum(-1)
            if D:
                s = s + dense.to(s.dtype) @ self.t(f"head.{name}.history.w")[0]
            return s
        if task["kind"] == "multiclass":
            raise ConfigError(f"task {name!r} is multiclass: use predict, not score")
        (stem, widths), = layer_stacks(self.config, task)
        x = torch.cat([user, self._target(task, cand_items), dense.to(user.dtype)], dim=-1)
        return self._mlp(stem, len(widths) - 1, x)[..., 0]

    def score(self, name: str, users: torch.Tensor, cand_items: torch.Tensor, dense: Optional[torch.Tensor] = None) -> torch.Tensor:
        """dupn's `score` for every user against every candidate: [B, C] (binary: σ(logit); rank, retrieval: raw)."""
        B, C = users.shape[0], cand_items.shape[0]
        task = self.task(name)
        D = dense_count(task)
        if dense is None:
            dense = users.new_zeros(C, D)
        z = self.logits(name, users.repeat_interleave(C, 0), cand_items.repeat(B, 1), dense.repeat(B, 1)).view(B, C)
        return torch.sigmoid(z) if task["kind"] == "binary" else z

    def predict(self, name: str, users: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities of a multiclass head: [B, classes]."""
        task = self.task(name)
        if task["kind"] != "multiclass":
            raise ConfigError(f"task {name!r} is {task['kind']}: use score, not predict")
        (stem, widths), = layer_stacks(self.config, task)
        return torch.softmax(self._mlp(stem, len(widths) - 1, users), dim=-1)

    def prior_of(self, name: str, cand_items: torch.Tensor) -> torch.Tensor:
        """A retrieval head's log prior of each candidate (the last history feature, looked up by bucket)."""
        task = self.task(name)
        fi = [f["name"] for f in self.config["itemFields"]].index(history_field(task))
        return self.t(f"head.{name}.prior")[cand_items[..., fi].long()]
