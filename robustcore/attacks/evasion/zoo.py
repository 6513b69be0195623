"""ZOO, Zeroth Order Optimization (Chen et al. 2017), the ZOO-ADAM variant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ...params import param
from ...progress import ProgressFn
from ...threat import QueryModel
from .blackbox import BlackBoxAttack, QueryState, seeded_generator

MAX_PROBE_BYTES = 256 * 2**20
"""Probe inputs built at once per iteration; more images are sent in groups of whole
images, so results and each client's query order are the same as in one batch."""


def upsample_matrix(small: int, large: int, device: torch.device | None = None) -> torch.Tensor:
    """The (large × small) matrix of 1-D linear interpolation as torch's bilinear
    ``F.interpolate(..., align_corners=False)`` does it along one axis (identity when equal).
    Bilinear upsampling of an image is ``U_h @ img @ U_w.T``."""
    eye = torch.eye(small, device=device).unsqueeze(1)  # (small, 1, small)
    cols = F.interpolate(eye, size=large, mode="linear", align_corners=False)
    return cols.squeeze(1).T.contiguous()


@dataclass(frozen=True)
class ZOO(BlackBoxAttack):
    """Zeroth Order Optimization: Carlini–Wagner's attack with gradients estimated from queries.

    ZOO minimises Carlini & Wagner's objective ``‖δ‖² + c·f(x+δ)`` where, on the
    log-probabilities the service returns, ``f = max(log p_true − max_other log p, −κ)``
    (targeted: ``max(max_other log p − log p_target, −κ)``). It has no gradient, so each
    iteration picks ``coords_per_step`` coordinates of the perturbation and estimates the
    partial derivatives by symmetric finite differences, ``(L(δ + h·e) − L(δ − h·e)) / 2h``
    (two queries per coordinate), then takes an ADAM step on those coordinates (ZOO-ADAM).

    Options from the paper: an attack space smaller than the image (``resize``: the
    perturbation lives on a coarse grid and is upsampled bilinearly, so fewer coordinates
    need estimating), and importance sampling (coordinates are drawn more often where the
    perturbation has already grown, instead of uniformly).

    Here all images are attacked at once: one query batch per iteration holds ``2 × images ×
    coords_per_step`` probes, then one query per image evaluates the new point. An image
    stops when the goal is reached (the wrong class wins by at least κ) or its budget is
    spent; the constant ``c`` is fixed (no binary search, to save queries).

    Chen et al. report, on MNIST (their CNN, 3,000 iterations and 9 binary-search steps per
    image, so far more queries than a page can afford), 100 % untargeted success with a mean
    L2 of 1.50 for ZOO-ADAM, next to 1.49 for the white-box C&W attack.

    Query counting: 1 query for the original image, then per iteration 2 per estimated
    coordinate plus 1 for the new point. A probe that is already adversarial ends the
    attack on its image right away (it is returned).

    ZOO has no ε (the L2 penalty sizes its change); its query budget is the run's:
    ``run(api, x, y, max_queries=5000)``, or the service's own per-client budget.
    """

    name = "zoo"
    title = "ZOO"
    paper = (
        "Chen et al. 2017, ZOO: Zeroth Order Optimization Based Black-box Attacks to Deep "
        "Neural Networks without Training Substitute Models"
    )

    c: float = param(
        10.0,
        low=0.001,
        high=1e4,
        log=True,
        label="Constant c",
        help="Weight of the misclassification term against the squared size of the change: "
        "larger c fools the model in fewer queries with a larger change.",
    )
    confidence: float = param(
        0.0,
        low=0.0,
        high=50.0,
        step=0.5,
        label="Confidence κ",
        help="How far (in log-probability) the wrong class must beat the right one before "
        "an image counts as done; above 0 gives sturdier examples at more queries.",
    )
    lr: float = param(
        0.1,
        low=1e-4,
        high=10.0,
        log=True,
        label="ADAM learning rate",
        help="Step size of the ADAM updates of the perturbation (the paper: 0.01 at full "
        "resolution with many more iterations).",
    )
    h: float = param(
        1e-4,
        low=1e-6,
        high=0.1,
        log=True,
        label="Finite-difference step h",
        help="How far each probe moves one coordinate to estimate its derivative.",
    )
    coords_per_step: int = param(
        128,
        low=1,
        high=4096,
        label="Coordinates per iteration",
        help="Coordinates estimated per image per iteration (2 queries each); the paper uses 128.",
    )
    resize: int = param(
        7,
        low=0,
        high=1024,
        label="Attack-space size (0 = full)",
        help="Side of the coarse grid the perturbation lives on (e.g. 7 or 14 for 28×28 "
        "images), upsampled bilinearly; 0, or a size at least the image's, attacks every "
        "pixel. Images only: other data is attacked feature by feature.",
    )
    importance: bool = param(
        True,
        label="Importance sampling",
        help="Draw coordinates more often where the perturbation has grown (the paper's "
        "importance sampling) instead of uniformly.",
    )
    seed: int = param(
        0, low=0, high=2**31 - 1, label="Seed", help="Seed of the random choice of coordinates."
    )

    #: ADAM's constants (the paper's and ADAM's defaults)
    beta1: ClassVar[float] = 0.9
    beta2: ClassVar[float] = 0.999
    adam_eps: ClassVar[float] = 1e-8

    def _space(self, shape: torch.Size) -> tuple[int, ...]:
        """The attack space's shape: (channels, resize, resize) for images larger than
        ``resize``, else the data's own shape (also for non-image data)."""
        if self.resize == 0 or len(shape) != 3:
            return tuple(shape)
        c, h, w = shape
        return (c, min(self.resize, h), min(self.resize, w))

    def _margin(self, probs: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
        """C&W's f on log-probabilities, before the −κ floor (negative: goal reached)."""
        logp = probs.clamp_min(1e-30).log()
        own = logp.gather(1, labels.unsqueeze(1)).squeeze(1)
        other = logp.scatter(1, labels.unsqueeze(1), float("-inf")).amax(dim=1)
        return other - own if targeted else own - other

    def _probe_pairs(
        self,
        api: QueryModel,
        state: QueryState,
        z: torch.Tensor,
        act: torch.Tensor,
        owner: torch.Tensor,
        j: torch.Tensor,
        basis,
        goal,
        flat: torch.Tensor,
        c: float,
        kappa: float,
    ) -> torch.Tensor:
        """Query the pairs ``z ± h·e_j`` (one per row; ``owner`` indexes ``act``), return the
        estimated derivatives, and end the attack of an image whose probe reaches the goal
        (its first such probe: the ``+`` probes come before the ``−`` ones)."""
        e = basis(j) * self.h
        zp = z[owner]
        probes = torch.cat([zp + e, zp - e])
        probes = torch.maximum(torch.minimum(probes, state.hi), state.lo)
        clients = act[owner].repeat(2)
        probs = self.ask(api, probes, clients, state.used)
        dist = (probes.flatten(1).double() - flat[clients].double()).pow(2).sum(1)
        f = self._margin(probs, state.labels[clients], state.targeted).clamp_min(-kappa)
        loss = dist + c * f.double()
        half = owner.shape[0]
        hit = goal(probs, clients)
        if bool(hit.any()):
            n = state.x.shape[0]
            pos = hit.nonzero().flatten()
            first = torch.full((n,), probes.shape[0], dtype=torch.long, device=z.device)
            first.scatter_reduce_(0, clients[pos], pos, reduce="amin")
            winners = (first < probes.shape[0]).nonzero().flatten()
            state.x_adv[winners] = probes[first[winners]]
            state.probs[winners] = probs[first[winners]]
            state.done[winners] = True
        return ((loss[:half] - loss[half:]) / (2 * self.h)).float()

    def _attack(
        self, api: QueryModel, state: QueryState, eps: float | None, progress: ProgressFn | None
    ) -> int:
        shape = state.x.shape[1:]
        space = self._space(shape)
        dev = state.x.device
        gen = seeded_generator(self.seed, dev)
        n, ds = state.x.shape[0], math.prod(space)
        kappa = float(self.confidence)

        def goal(probs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            won = state.adversarial(probs, idx)
            if kappa > 0:
                won &= self._margin(probs, state.labels[idx], state.targeted) <= -kappa
            return won

        state.done = goal(state.probs, torch.arange(n, device=dev))
        resized = space != tuple(shape)
        if resized:
            uh = upsample_matrix(space[1], shape[1], dev)  # (H, r)
            uw = upsample_matrix(space[2], shape[2], dev)  # (W, r)

        def up(d: torch.Tensor) -> torch.Tensor:
            """Perturbations in the attack space (k, *space) → image space (k, *shape)."""
            return uh @ d @ uw.T if resized else d

        def basis(j: torch.Tensor) -> torch.Tensor:
            """Image-space probes of the attack-space coordinates ``j`` (k,) → (k, *shape)."""
            k = j.shape[0]
            if not resized:
                e = torch.zeros((k, ds), device=dev)
                e[torch.arange(k, device=dev), j] = 1.0
                return e.view(k, *shape)
            plane = space[1] * space[2]
            ch, a, b = j // plane, (j % plane) // space[2], j % space[2]
            out = torch.zeros((k, *shape), device=dev)
            out[torch.arange(k, device=dev), ch] = uh.T[a].unsqueeze(2) * uw.T[b].unsqueeze(1)
            return out

        delta = torch.zeros((n, ds), device=dev)
        m1 = torch.zeros_like(delta)
        v2 = torch.zeros_like(delta)
        steps_t = torch.zeros_like(delta)
        flat = state.x.flatten(1)
        c = float(self.c)
        it = 0
        while True:
            # An iteration needs a probe pair and the evaluation of the new point.
            act = state.active(need=3)
            if act.numel() == 0:
                break
            na = act.numel()
            left = state.budget[act] - state.used[act]
            k = torch.clamp((left - 1) // 2, max=min(self.coords_per_step, ds))  # (na,) ≥ 1
            mk = int(k.max())
            # Coordinates: without replacement within an iteration, uniform or by importance.
            if self.importance and it > 0:
                mag = delta[act].abs().view(na, *space)
                if len(space) == 3:
                    mag = F.max_pool2d(mag, kernel_size=3, stride=1, padding=1)
                w = mag.flatten(1)
                w = w + 0.1 * w.mean(dim=1, keepdim=True) + 1e-12  # every coordinate stays possible
                coords = torch.multinomial(w, mk, replacement=False, generator=gen)
            else:
                coords = torch.rand((na, ds), generator=gen, device=dev).argsort(dim=1)[:, :mk]
            valid = torch.arange(mk, device=dev).unsqueeze(0) < k.unsqueeze(1)  # (na, mk)
            rows = valid.nonzero()  # (p, 2): image slot, coordinate slot
            owner, j = rows[:, 0], coords[rows[:, 0], rows[:, 1]]
            z = state.x[act] + up(delta[act].view(na, *space))  # unclamped current points
            per_image = 2 * mk * flat.shape[1] * flat.element_size()
            group = max(1, MAX_PROBE_BYTES // max(per_image, 1))
            grads = []
            for g0 in range(0, na, group):  # rows are ordered by image slot
                bounds = torch.tensor([g0, g0 + group], device=dev)
                lo_r, hi_r = torch.searchsorted(owner, bounds).tolist()
                rows_g = slice(lo_r, hi_r)
                grads.append(
                    self._probe_pairs(
                        api, state, z, act, owner[rows_g], j[rows_g], basis, goal, flat, c, kappa
                    )
                )
            grad = torch.cat(grads)
            # ADAM on the estimated coordinates (per-coordinate step counts, as in the paper).
            g = torch.zeros((na, mk), device=dev)
            g[rows[:, 0], rows[:, 1]] = grad
            idx = act.unsqueeze(1).expand(na, mk)
            sel = (idx[valid], coords[valid])
            m1[sel] = self.beta1 * m1[sel] + (1 - self.beta1) * g[valid]
            v2[sel] = self.beta2 * v2[sel] + (1 - self.beta2) * g[valid].pow(2)
            steps_t[sel] += 1
            mhat = m1[sel] / (1 - self.beta1 ** steps_t[sel])
            vhat = v2[sel] / (1 - self.beta2 ** steps_t[sel])
            delta[sel] -= self.lr * mhat / (vhat.sqrt() + self.adam_eps)
            # Evaluate the new point of every image still attacked.
            ev = act[~state.done[act]]
            if ev.numel():
                z = state.x[ev] + up(delta[ev].view(ev.numel(), *space))
                x_new = torch.maximum(torch.minimum(z, state.hi), state.lo)
                p_new = self.ask(api, x_new, ev, state.used)
                state.x_adv[ev] = x_new
                state.probs[ev] = p_new
                state.done[ev] = goal(p_new, ev)
            it += 1
            if progress and it % 5 == 0:
                progress(state.fraction_done(), f"ZOO: iteration {it}")
        if kappa > 0:  # success is the label goal; κ only decided when to stop
            state.done = state.adversarial(state.probs, torch.arange(n, device=dev))
        return it
