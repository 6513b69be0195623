"""Projected Gradient Descent (Madry et al. 2018, "Towards Deep Learning Models Resistant
to Adversarial Attacks"), L∞ and L2, with random start and restarts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ValidationError
from ...params import param
from ...progress import ProgressFn
from .base import EvasionAttack, gradient_loss_logits, l2_normalize, project


@dataclass(frozen=True)
class PGD(EvasionAttack):
    """Many small gradient steps, each followed by a projection back into the ε-ball.

    Madry et al. call it the "universal first-order adversary": on an undefended MNIST
    CNN, PGD with ε = 0.3 and 40 steps drives accuracy to about 0 %. With ``restarts > 1``
    the attack is repeated from new random starting points and each input keeps its
    strongest result (a success if any restart succeeded, else the highest loss), so
    restarts can only make it stronger. Restarts after the first always start at random.
    The budget ε and its norm are the run's (``run(..., eps=0.3, norm="linf")``).

    With ``early_stop`` each input leaves the attack at the first step whose iterate fools
    the model (seen in that step's own forward pass, so the check costs nothing) and keeps
    that iterate; only the inputs not yet fooled pay for further steps. Every input the
    fixed-step attack fools is then fooled as well or earlier, so the accuracy it reports
    is at most the fixed-step one (up to float rounding), while an undefended model costs a
    fraction of the steps. Leave it off to reproduce the last-iterate PGD of the paper and
    of torchattacks bit for bit, or when the examples must keep climbing the loss after
    they first fool (e.g. to transfer them to another model).
    """

    name = "pgd"
    title = "PGD"
    paper = "Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks"

    steps: int = param(10, low=1, high=1000, label="Steps", help="Gradient steps per restart.")
    step_size: float = param(
        0.0,
        low=0.0,
        high=2.0,
        step=0.01,
        label="Step size (× ε; 0 = auto)",
        help="Each step's length as a fraction of ε. 0 picks 2.5/steps, the rule of "
        "Madry et al., so the steps can cross the ball 2.5 times.",
    )
    random_start: bool = param(
        True,
        label="Random start",
        help="Start from a random point in the ε-ball instead of the original input.",
    )
    restarts: int = param(
        1, low=1, high=20, label="Restarts", help="Independent runs; each input keeps its best."
    )
    seed: int = param(0, low=0, high=2**31 - 1, label="Seed", help="Seed of the random starts.")
    early_stop: bool = param(
        False,
        label="Stop each input at its first success",
        help="An input that fools the model leaves the attack with that iterate; the "
        "others go on. Never weaker, much faster on an undefended model; off reproduces "
        "the paper's last-iterate PGD exactly.",
    )

    def check(self) -> None:
        if self.steps < 1:
            raise ValidationError("PGD needs at least one step.")

    def alpha(self, eps: float) -> float:
        """The absolute step size for budget ``eps``."""
        rel = self.step_size if self.step_size > 0 else 2.5 / self.steps
        return rel * eps

    def _random_start(
        self, x: torch.Tensor, gen: torch.Generator, eps: float, norm: str
    ) -> torch.Tensor:
        if norm == "linf":
            u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            return (2 * u - 1) * eps
        # Uniform in the L2 ball: a Gaussian direction times radius eps * U^(1/d).
        d = x[0].numel()
        g = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        r = torch.rand((x.shape[0],), generator=gen, device=x.device, dtype=x.dtype) ** (1 / d)
        return l2_normalize(g) * (eps * r).view(-1, *([1] * (x.dim() - 1)))

    def _one_run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        labels: torch.Tensor,
        targeted: bool,
        lo: torch.Tensor,
        hi: torch.Tensor,
        start: torch.Tensor | None,
        eps: float,
        norm: str,
        tick,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        alpha = self.alpha(eps)
        x_adv = x if start is None else torch.maximum(torch.minimum(x + start, hi), lo)
        # With early stop: ``active`` indexes the inputs still attacked (None: all of them),
        # ``xs``/``ls``/``xa`` are their originals, labels and iterates.
        active, xs, ls, xa = None, x, labels, x_adv
        for k in range(self.steps):
            grad, _, logits = gradient_loss_logits(model, xa, ls, targeted)
            if self.early_stop:
                pred = logits.argmax(dim=1)
                won = pred == ls if targeted else pred != ls
                if bool(won.any()):
                    keep = torch.nonzero(~won).flatten()
                    if active is None:
                        x_adv = xa.clone()  # the fooled iterates stay here as they are
                        active = keep
                    else:
                        x_adv[active] = xa
                        active = active[keep]
                    if active.numel() == 0:  # every input fooled: the steps left are free
                        for _ in range(k, self.steps):
                            tick()
                        break
                    xs, ls, xa, grad = x[active], labels[active], xa[keep], grad[keep]
            step = grad.sign() if norm == "linf" else l2_normalize(grad)
            delta = project(xa + alpha * step - xs, eps, norm)
            xa = torch.maximum(torch.minimum(xs + delta, hi), lo)
            tick()
        if active is None:
            x_adv = xa
        elif active.numel():
            x_adv[active] = xa
        if self.restarts == 1:
            return x_adv.detach(), None  # nothing to compare: skip the scoring pass
        return x_adv.detach(), self._score(model, x_adv, labels, targeted)

    @staticmethod
    def _score(
        model: nn.Module, x_adv: torch.Tensor, labels: torch.Tensor, targeted: bool
    ) -> torch.Tensor:
        """Each input's strength for comparing restarts (successes first, then the loss)."""
        with torch.inference_mode():
            logits = model(x_adv)
            loss = nn.functional.cross_entropy(logits, labels, reduction="none")
            pred = logits.argmax(dim=1)
        if targeted:
            loss, won = -loss, pred == labels
        else:
            won = pred != labels
        # Successes rank above failures; among equals a higher loss is stronger.
        return loss + won.to(loss.dtype) * 1e6

    def _attack(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        lo: torch.Tensor,
        hi: torch.Tensor,
        eps: float,
        norm: str,
        progress: ProgressFn | None,
    ) -> tuple[torch.Tensor, int]:
        targeted = target is not None
        labels = target if targeted else y
        if eps == 0:
            return x.clone(), 0
        gen = torch.Generator(device=x.device)
        gen.manual_seed(self.seed)
        total = self.steps * self.restarts
        done = [0]

        def tick() -> None:
            done[0] += 1
            if progress and (done[0] % max(1, total // 50) == 0 or done[0] == total):
                progress(done[0] / total, f"PGD step {done[0]}/{total}")

        best, best_score = None, None
        for r in range(self.restarts):
            use_random = self.random_start or r > 0
            if best_score is not None:
                # Only inputs not yet fooled need another restart.
                todo = torch.nonzero(best_score < 1e5).flatten()
                if todo.numel() == 0:
                    done[0] += self.steps * (self.restarts - r)
                    break
            else:
                todo = None
            xs = x if todo is None else x[todo]
            ls = labels if todo is None else labels[todo]
            start = self._random_start(x, gen, eps, norm) if use_random else None
            if start is not None and todo is not None:
                start = start[todo]
            adv, score = self._one_run(model, xs, ls, targeted, lo, hi, start, eps, norm, tick)
            if best is None:
                best, best_score = adv, score
            else:
                better = score > best_score[todo]
                idx = todo[better]
                best[idx] = adv[better]
                best_score[idx] = score[better]
        return best, done[0]
