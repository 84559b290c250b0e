"""SeAC's unsupervised objectives (Sec. 2.4): MICL (Eq. 6–7) and MSA-MICL with audio mixing (Eq. 8).

Shapes: ``masks`` (B, N, d) projected mask embeddings, ``valid`` (B, N) bool (padding masks are False),
``audio`` (K, d) projected audio embeddings. All embeddings are L2-normalised inside, so ``sim`` is the cosine.
The paper sums over the batch; we average (sum / B) so that the learning rate does not depend on B.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["micl_loss", "msa_micl_loss", "random_groups", "set_similarity"]


def set_similarity(masks: torch.Tensor, valid: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Eq. 7: ``S[i, j] = max_{f ∈ F_i} sim(f, a_j)`` — (B, K), the best mask of image ``i`` for audio ``j``.

    An image without any valid mask gets ``-1`` (the lowest cosine) everywhere."""
    f = F.normalize(masks, dim=-1)
    a = F.normalize(audio, dim=-1)
    sim = torch.einsum("bnd,kd->bnk", f, a)
    sim = sim.masked_fill(~valid[:, :, None], -2.0)
    return sim.max(dim=1).values.clamp(min=-1.0)


def micl_loss(S: torch.Tensor, tau: torch.Tensor | float, negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6: symmetric InfoNCE on the B×B set-to-audio similarity ``S`` (positives on the diagonal):
    ``−Σ_i log softmax_j(S_ij/τ)[i] − Σ_i log softmax_j(S_ji/τ)[i]``, averaged over ``i``.

    ``negatives`` (B, Q), optional (our addition): the similarity of each image to Q audios that belong to no
    image (ambient noise); they join the denominator of the image-to-audio term only."""
    logits = S / tau
    target = torch.arange(S.shape[0], device=S.device)
    rows = logits if negatives is None else torch.cat([logits, negatives / tau], dim=1)
    return F.cross_entropy(rows, target) + F.cross_entropy(logits.t(), target)


def msa_micl_loss(
    S: torch.Tensor, groups: torch.Tensor, tau: torch.Tensor | float, negatives: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 8 on ``S'`` (B, K), the similarity of image ``i``'s masks to mixed audio ``k``; ``groups`` (B,) int is
    ``Ω(i)``, the mixture that holds image ``i``'s audio.

    First term (per mixture ``k``): ``−log Σ_{i∈K_k} exp(S'_ik/τ) / Σ_j exp(S'_jk/τ)`` — every image whose audio
    is in the mixture is a positive. Second term (per image ``i``): ``−log softmax_k(S'_ik/τ)[Ω(i)]``. The first
    is averaged over the K mixtures, the second over the B images; with ``K = B`` and ``Ω(i) = i`` this is
    exactly :func:`micl_loss` (Eq. 6). ``negatives`` (B, Q) join the second term's denominator, as there."""
    logits = S / tau  # (B, K)
    B, K = S.shape
    member = F.one_hot(groups, K).bool()  # (B, K)
    col = torch.logsumexp(logits, dim=0)  # (K,) over images j
    pos = torch.logsumexp(logits.masked_fill(~member, float("-inf")), dim=0)  # (K,)
    has = member.any(0)
    term1 = (col - pos)[has].mean()
    term2 = F.cross_entropy(logits if negatives is None else torch.cat([logits, negatives / tau], dim=1), groups)
    return term1 + term2


def random_groups(batch: int, num_groups: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``Ω``: a random partition of ``batch`` samples into ``num_groups`` groups of (nearly) equal size, as (B,)
    group indices (SeAC mixes two audios per group: ``num_groups = B // 2``)."""
    if not 1 <= num_groups <= batch:
        raise ValueError(f"need 1 <= num_groups <= batch, got {num_groups} groups for {batch}")
    perm = torch.randperm(batch, generator=generator)
    g = torch.empty(batch, dtype=torch.long)
    g[perm] = torch.arange(batch) % num_groups
    return g
