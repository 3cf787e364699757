"""Heads that localise: the pointing game and mass-in-box lift of every layer x head's own image map,
and the choice of the best heads on other studies than the one shown.

Pure maths over arrays; ``pipeline.studies.methods`` feeds it a row's maps and ``export.method_tables``
the rows of a tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medgemma_tui.analysis.metrics import map_metrics

HEAD_METRICS = ("pointing_hit", "mass_in_box_lift")


def head_metrics(head_maps: np.ndarray, shape: tuple[int, int], box: np.ndarray, pointing: np.ndarray | None
                 ) -> dict[str, np.ndarray]:
    """Per layer x head [L, H]: the box metrics of each head's map (``head_maps`` [L, H, N])."""
    L, H, _ = head_maps.shape
    out = {name: np.full((L, H), np.nan) for name in HEAD_METRICS}
    for layer in range(L):
        for head in range(H):
            grid = np.clip(head_maps[layer, head].reshape(shape), 0, None)
            if grid.sum() <= 0:
                continue
            metrics = map_metrics(grid, box=box, pointing=pointing)
            for name in HEAD_METRICS:
                out[name][layer, head] = metrics[name]
    return out


def row_head_scores(record, rows, box: np.ndarray | None, pointing: np.ndarray | None
                    ) -> dict[str, np.ndarray] | None:
    """``head_metrics`` of one row's heads at the query ``rows`` (a ``views.select_rows`` choice, the maps
    averaged over them); None for a row without a box."""
    from medgemma_tui.analysis.views import select_rows

    if box is None:
        return None
    head_maps = record.image_attn[select_rows(record, rows)].mean(axis=0)  # [L, H, N]
    return head_metrics(head_maps, tuple(record.grid), box, pointing)


def rank_heads(pointing: np.ndarray, lift: np.ndarray) -> np.ndarray:
    """Heads [L*H, 2] as (layer, head), best first: mean pointing over rows, then mean lift, then index.

    ``pointing`` and ``lift`` are [rows, L, H]; NaN rows of a head are left out of its means.
    """
    with np.errstate(invalid="ignore"):
        p = np.nan_to_num(np.nanmean(pointing, axis=0), nan=-np.inf)
        m = np.nan_to_num(np.nanmean(lift, axis=0), nan=-np.inf)
    L, H = p.shape
    order = np.lexsort((np.arange(L * H), -m.ravel(), -p.ravel()))
    return np.stack(np.unravel_index(order, (L, H)), axis=1)


def top_head_weights(pointing: np.ndarray, lift: np.ndarray, k: int) -> np.ndarray:
    """[L, H] weights: 1 on the ``k`` best heads of ``rank_heads``, 0 elsewhere."""
    weights = np.zeros(pointing.shape[1:], dtype=np.float32)
    for layer, head in rank_heads(pointing, lift)[:k]:
        weights[layer, head] = 1.0
    return weights


def leave_one_study_out(studies: Sequence, pointing: np.ndarray, lift: np.ndarray, k: int) -> list[np.ndarray | None]:
    """For each row, ``top_head_weights`` chosen on the rows of every other study (None when there is none)."""
    labels = np.asarray([str(s) for s in studies])
    out: list[np.ndarray | None] = []
    for i in range(len(labels)):
        others = labels != labels[i]
        out.append(top_head_weights(pointing[others], lift[others], k) if others.any() else None)
    return out


def top_heads_map(head_maps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean of the heads' maps ([L, H, N], weights [L, H]): [N]."""
    w = np.asarray(weights, dtype=np.float64)
    return (np.asarray(head_maps, dtype=np.float64) * w[..., None]).sum(axis=(0, 1)) / max(w.sum(), 1e-12)
