"""Training of the per-aspect linear adapters on frozen sentence embeddings (the shipped
artifact is applied by search.adapters; this is how it is made).

W = I + D (full 384x384, D initialised to 0, i.e. identity) or W = I + U V^T (low-rank
residual, V initialised to 0).  Trained with a MultipleNegativesRanking-style in-batch
softmax loss on (anchor, positive) pairs of papers sharing an aspect label; in-batch
"negatives" that share a label with the anchor are masked out (they are not negatives).
Optional L2 pull of D towards 0 (i.e. W towards identity).  Applying it needs numpy only:
`apply_adapter(X, W) = l2n(X @ W)`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from search.vectors import l2_normalise as l2n


def apply_adapter(X: np.ndarray, W: np.ndarray | None) -> np.ndarray:
    if W is None:
        return l2n(X)
    return l2n(np.asarray(X, dtype=np.float32) @ W)


def share_matrix(labels: Sequence[set]) -> np.ndarray:
    """Boolean (n, n) matrix: docs i and j share at least one label (diagonal True if labelled)."""
    vocab: dict = {}
    for labs in labels:
        for lab in labs:
            vocab.setdefault(lab, len(vocab))
    M = np.zeros((len(labels), max(len(vocab), 1)), dtype=np.float32)
    for i, labs in enumerate(labels):
        for lab in labs:
            M[i, vocab[lab]] = 1.0
    return (M @ M.T) > 0


def train_adapter(
    X: np.ndarray,
    labels: Sequence[set],
    *,
    rank: int | None = None,
    epochs: int = 30,
    lr: float = 2e-3,
    batch_size: int = 64,
    scale: float = 20.0,
    reg: float = 0.0,
    seed: int = 0,
    val: tuple[np.ndarray, Sequence[set]] | None = None,
    val_fn=None,
    eval_every: int = 3,
    time_limit_s: float = 110.0,
    log=None,
) -> tuple[np.ndarray, dict]:
    """Train a linear adapter; returns (W as float32 numpy (d, d), info).

    If `val` (X_val, val_labels) and `val_fn(W, X_val, val_labels) -> float` are given, the
    W with the best validation score (checked every `eval_every` epochs, and at epoch 0 =
    identity) is returned; the training split is the only source of gradient.
    """
    import torch

    t0 = time.time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X = l2n(X)
    n, d = X.shape
    share = share_matrix(labels)
    np.fill_diagonal(share, False)
    anchors = np.where(share.any(axis=1))[0]
    pos_lists = {int(i): np.where(share[i])[0] for i in anchors}
    Xt = torch.from_numpy(X)
    share_t = torch.from_numpy(share)

    if rank is None:
        D = torch.zeros(d, d, requires_grad=True)
        params = [D]

        def weight():
            return torch.eye(d) + D
    else:
        U = (0.01 * torch.randn(d, rank)).requires_grad_()
        V = torch.zeros(d, rank, requires_grad=True)
        params = [U, V]

        def weight():
            return torch.eye(d) + U @ V.T

    opt = torch.optim.Adam(params, lr=lr)
    info = {"n_train": int(n), "n_anchors": int(len(anchors)), "losses": [], "val": [], "best_epoch": 0}
    best_W = np.eye(d, dtype=np.float32)
    best_val = None
    if val is not None and val_fn is not None:
        best_val = val_fn(best_W, *val)
        info["val"].append((0, float(best_val)))
    if len(anchors) == 0:
        info["train_time_s"] = time.time() - t0
        info["note"] = "no positive pairs: identity adapter"
        return best_W, info

    for ep in range(1, epochs + 1):
        order = rng.permutation(anchors)
        pos = np.array([rng.choice(pos_lists[int(a)]) for a in order])
        ep_loss, nb = 0.0, 0
        for s in range(0, len(order), batch_size):
            a_idx = torch.from_numpy(order[s : s + batch_size])
            p_idx = torch.from_numpy(pos[s : s + batch_size])
            if len(a_idx) < 2:
                continue
            W = weight()
            qa = torch.nn.functional.normalize(Xt[a_idx] @ W, dim=-1)
            qp = torch.nn.functional.normalize(Xt[p_idx] @ W, dim=-1)
            logits = scale * qa @ qp.T
            # mask in-batch false negatives (share a label with the anchor), keep the diagonal
            fn = share_t[a_idx][:, p_idx].clone()
            fn.fill_diagonal_(False)
            logits = logits.masked_fill(fn, float("-inf"))
            target = torch.arange(len(a_idx))
            loss = 0.5 * (
                torch.nn.functional.cross_entropy(logits, target)
                + torch.nn.functional.cross_entropy(logits.T, target)
            )
            if reg > 0:
                loss = loss + reg * sum((p**2).sum() for p in params)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ep_loss += float(loss.detach())
            nb += 1
        info["losses"].append(ep_loss / max(nb, 1))
        if log:
            log(f"    epoch {ep}: loss {info['losses'][-1]:.4f}")
        over_time = time.time() - t0 > time_limit_s
        if val is not None and val_fn is not None and (ep % eval_every == 0 or ep == epochs or over_time):
            Wn = weight().detach().numpy().astype(np.float32)
            v = val_fn(Wn, *val)
            info["val"].append((ep, float(v)))
            if v > best_val:
                best_val, best_W, info["best_epoch"] = v, Wn, ep
        if over_time:
            info["stopped_early_time_limit"] = ep
            break
    if val is None or val_fn is None:
        best_W = weight().detach().numpy().astype(np.float32)
        info["best_epoch"] = len(info["losses"])
    info["train_time_s"] = time.time() - t0
    return best_W, info
