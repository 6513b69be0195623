"""SimBA, the Simple Black-box Attack (Guo et al. 2019), pixel and DCT bases."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ...errors import ValidationError
from ...params import param
from ...progress import ProgressFn
from ...threat import QueryModel
from .blackbox import BlackBoxAttack, QueryState, seeded_generator

BASES = ("pixel", "dct")
"""SimBA's two bases: single pixels, or 2-D cosine patterns (SimBA-DCT)."""


def dct_matrix(n: int, device: torch.device | None = None) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``D`` (n×n): ``D @ v`` is the DCT of ``v``, ``D.T`` the
    inverse; row ``k`` is the k-th cosine basis vector (scipy's ``norm="ortho"``)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * j + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=torch.float32)


def idct_2d(z: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D inverse DCT over the last two dimensions (computed in torch)."""
    dh = dct_matrix(z.shape[-2], z.device)
    dw = dct_matrix(z.shape[-1], z.device)
    return dh.T @ z @ dw


def frequency_levels(h: int, w: int, freq_dim: int, stride: int) -> torch.Tensor:
    """The block of each 2-D frequency (h×w, long): 0 for the ``freq_dim``×``freq_dim`` lowest
    frequencies, then one more for every ``stride`` rows and columns added (Guo et al.'s and
    ART's "block order"; directions are tried block by block, at random within a block)."""
    u = torch.arange(h).unsqueeze(1).expand(h, w)
    v = torch.arange(w).unsqueeze(0).expand(h, w)
    top = torch.maximum(u, v)
    return torch.where(top < freq_dim, 0, 1 + (top - freq_dim).div(stride, rounding_mode="floor"))


@dataclass(frozen=True)
class SimBA(BlackBoxAttack):
    """Simple Black-box Attack: random orthonormal directions, keep what lowers the score.

    For each image, SimBA picks directions ``q`` one by one from an orthonormal basis
    (without replacement): single pixels (``basis="pixel"``) or 2-D cosine patterns, low
    frequencies first (``basis="dct"``, SimBA-DCT). It asks the service about ``x − ε·q``;
    if the probability of the true class went down (targeted: the target's went up) the step
    is kept, otherwise it asks about ``x + ε·q`` and keeps that if it helps. An image stops
    at its first misclassification (targeted: the target class) or when its query budget is
    spent; a probe that is already adversarial is kept even if the score did not fall.
    Within one pass over the basis the kept steps are orthogonal, so the L2 norm of the
    perturbation grows like ``ε·√(steps kept)``; after a full pass a new random order
    starts.

    On ImageNet (ResNet-50, untargeted, ε = 0.2) Guo et al. report 98.6 % success with a
    mean of 1,665 queries for SimBA (pixel) and 97.8 % with 1,283 for SimBA-DCT.

    Query counting: 1 query for the original image, then 1 or 2 per direction. A probe that
    the data bounds clip back onto the current point (e.g. darkening a pixel that is already
    0) is not sent: its answer is the current one, already known, so it costs nothing.
    Every image of the batch is attacked at once, one batched query per half-step.

    The step length ε and the query budget are the run's: ``run(api, x, y, eps=0.2,
    max_queries=2000)`` (without ``max_queries`` the service's own budget ends each image;
    at most that many directions are tried). The basis says *which* SimBA this is (pixel or
    SimBA-DCT), not how it is tuned: ``SimBA(basis="pixel")``. It is kept out of the
    declared settings, so the experiments that run both bases side by side share one set
    of settings and choose the basis by which attack they run.
    """

    name = "simba"
    title = "SimBA"
    paper = "Guo et al. 2019, Simple Black-box Adversarial Attacks"
    budgeted: ClassVar[bool] = True

    freq_dim: int = param(
        4,
        low=1,
        high=1024,
        label="Low-frequency block (DCT)",
        help="DCT basis: the first directions are the freq_dim × freq_dim lowest frequencies; "
        "then the block grows by `stride` rows and columns at a time.",
    )
    stride: int = param(
        1, low=1, high=256, label="Block stride (DCT)", help="How fast the frequency block grows."
    )
    seed: int = param(
        0, low=0, high=2**31 - 1, label="Seed", help="Seed of the random order of directions."
    )
    basis: str = field(default="dct", kw_only=True)

    def check(self) -> None:
        if self.basis not in BASES:
            raise ValidationError(
                f"SimBA's basis must be 'pixel' (one pixel at a time) or 'dct' (low-frequency "
                f"cosine patterns); got {self.basis!r}."
            )

    @property
    def label(self) -> str:
        """``SimBA (pixel)`` or ``SimBA (DCT)``."""
        return f"SimBA ({'DCT' if self.basis == 'dct' else 'pixel'})"

    def _orders(self, shape: torch.Size, n: int, gen: torch.Generator) -> torch.Tensor:
        """One random order of all basis directions per image, (n, D) flat indices."""
        dims = math.prod(shape)
        keys = torch.rand((n, dims), generator=gen, device=gen.device)
        if self.basis == "dct":
            c, h, w = shape
            level = frequency_levels(h, w, self.freq_dim, self.stride).to(gen.device)
            keys = keys + level.flatten().repeat(c).to(keys.dtype)  # blocks first, random within
        return keys.argsort(dim=1)

    def _directions(
        self, flat_idx: torch.Tensor, shape: torch.Size, dh: torch.Tensor, dw: torch.Tensor
    ) -> torch.Tensor:
        """The unit basis vectors with the given flat indices, shaped (k, *shape); ``dh``
        and ``dw`` are the DCT matrices of the image's height and width."""
        k = flat_idx.shape[0]
        dev = flat_idx.device
        if self.basis == "pixel":
            q = torch.zeros((k, math.prod(shape)), device=dev)
            q[torch.arange(k, device=dev), flat_idx] = 1.0
            return q.view(k, *shape)
        c, h, w = shape
        ch, u, v = flat_idx // (h * w), (flat_idx % (h * w)) // w, flat_idx % w
        pattern = dh[u].unsqueeze(2) * dw[v].unsqueeze(1)  # inverse DCT of one frequency
        q = torch.zeros((k, c, h, w), device=dev)
        q[torch.arange(k, device=dev), ch] = pattern
        return q

    def _attack(
        self, api: QueryModel, state: QueryState, eps: float | None, progress: ProgressFn | None
    ) -> int:
        assert eps is not None
        shape = state.x.shape[1:]
        if self.basis == "dct" and len(shape) != 3:
            raise ValidationError(
                "The DCT basis needs images shaped (channels, height, width); use "
                f"basis='pixel' for data shaped {tuple(shape)}."
            )
        gen = seeded_generator(self.seed, state.x.device)
        n, dims = state.x.shape[0], math.prod(shape)
        lab = state.labels.unsqueeze(1)
        # Score = probability of the label to move away from (untargeted) or, negated, of the
        # target: lower is better in both cases.
        sign = -1.0 if state.targeted else 1.0
        score = sign * state.probs.gather(1, lab).squeeze(1)
        order = self._orders(shape, n, gen)
        dh = dct_matrix(shape[-2], state.x.device) if self.basis == "dct" else None
        dw = dct_matrix(shape[-1], state.x.device) if self.basis == "dct" else None
        pixel = self.basis == "pixel"
        if pixel:
            # The pixel basis changes one feature per probe: move only that feature (and its
            # own bounds) instead of building, clipping and comparing whole images.
            lo_flat = torch.broadcast_to(state.lo, (1, *shape)).reshape(-1)
            hi_flat = torch.broadcast_to(state.hi, (1, *shape)).reshape(-1)
        t = 0
        report_every = 25
        rows_all = torch.arange(n, device=state.x.device)
        # ``safe``: iterations left in which no attacked image can run out of queries (each
        # iteration costs an image at most 2), so the budget checks can be skipped; at 0
        # they run at every step. ``act`` holds the images still attacked; it only needs
        # refreshing after a step was kept (the image may have won).
        safe, act, refresh = 0, rows_all, True
        while True:
            if safe > 0:
                if refresh:
                    act = act[~state.done[act]]
            else:
                act = state.active()
                if act.numel():
                    safe = int((state.budget[act] - state.used[act]).min()) // 2
            # Directions are tried at most max_queries times per image (each costs ≥ 1 query
            # except on features whose bounds leave no room at all).
            if act.numel() == 0 or t >= state.max_queries:
                break
            checked = safe == 0
            safe -= 1
            refresh = False
            pos = t % dims
            if pos == 0 and t > 0:
                order = self._orders(shape, n, gen)  # a new pass: a fresh random order
            start_act = act
            flat = order[act, pos]
            # the DCT direction already scaled by the step length ε
            q = None if pixel else self._directions(flat, shape, dh, dw).mul_(eps)
            for sgn in (-1.0, 1.0):
                first = sgn < 0
                if act.numel() == 0:
                    break
                probe = state.x_adv[act]  # a copy: indexing with a tensor
                if pixel:
                    view = probe.view(probe.shape[0], dims)
                    rows = rows_all[: probe.shape[0]]
                    old = view[rows, flat]
                    new_v = torch.clamp(old + sgn * eps, lo_flat[flat], hi_flat[flat])
                    view[rows, flat] = new_v
                    moved = new_v != old
                else:
                    cur = probe
                    probe = torch.clamp(torch.add(cur, q, alpha=sgn), state.lo, state.hi)
                    moved = (probe != cur).flatten(1).any(dim=1)
                # active() left room for one query: only the + step needs the check
                ask = (
                    moved if first or not checked else moved & (state.used[act] < state.budget[act])
                )
                everyone = bool(ask.all())  # the usual case: skip the masked copies
                tried = act if everyone else act[ask]
                kept = None
                if tried.numel():
                    asked = probe if everyone else probe[ask]
                    probs = self.ask(api, asked, tried, state.used)
                    labs = state.labels[tried]
                    new = probs.gather(1, labs.unsqueeze(1)).squeeze(1)
                    pred = probs.argmax(dim=1)
                    if state.targeted:
                        new, won = -new, pred == labs
                    else:
                        won = pred != labs
                    keep = (new < score[tried]) | won
                    sel = keep.nonzero().squeeze(1)
                    if sel.numel():
                        idx = tried[sel]
                        state.x_adv[idx] = asked[sel]
                        state.probs[idx] = probs[sel]
                        score[idx] = new[sel]
                        state.done[idx] = won[sel]  # active images were not done before
                        refresh = True
                    kept = keep
                if not first:
                    break
                # the + step only where the − step was not kept
                if kept is None:
                    continue  # nothing kept: the + step goes to the same images
                if everyone:
                    rest = ~kept
                else:
                    rest = torch.ones_like(ask)
                    rest[ask.nonzero().flatten()[kept]] = False
                ri = rest.nonzero().squeeze(1)  # one index for the three selections
                act, flat = act[ri], flat[ri]
                if q is not None:
                    q = q[ri]
            act = start_act
            t += 1
            if progress and t % report_every == 0:
                progress(state.fraction_done(), f"SimBA ({self.basis}): {t} directions")
        return t
