"""Progress reporting: one callback type and one way to divide it among the parts of a job.

Every long computation in robustcore takes an optional ``progress(fraction, message)``
callback (:data:`ProgressFn`). A job that runs several parts one after the other gives each
part its own callback with :func:`split`, so that each part reports from 0 to 1 and the job
as a whole still moves from 0 to 1::

    train, attack = split(progress, {"training": 3, "attack": 1})
    model = train_model(..., progress=train)   # reports 0 → 0.75 of the whole
    run_attack(..., progress=attack)           # reports 0.75 → 1

A callback may raise (the job runner raises :class:`~robustcore.errors.JobCancelled` when
the user pressed Cancel); the parts simply let that propagate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

ProgressFn = Callable[[float, str], None]
"""``progress(fraction, message)``: how far a computation is (0…1) and what it is doing."""


def _clamp(f: float) -> float:
    try:
        f = float(f)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if f != f else min(1.0, max(0.0, f))


def scaled(
    progress: ProgressFn | None, start: float, end: float, label: str = ""
) -> ProgressFn | None:
    """A callback whose 0…1 maps to ``start``…``end`` of ``progress``; messages get ``label``.

    ``None`` stays ``None`` (no one listens), so callers can pass the result on directly.
    """
    if progress is None:
        return None
    width = end - start

    def report(fraction: float, message: str = "") -> None:
        text = (
            f"{label} · {message}" if label and message and message != label else (message or label)
        )
        progress(start + width * _clamp(fraction), text)

    return report


def split(
    progress: ProgressFn | None, weights: Mapping[str, float] | Sequence[float]
) -> list[ProgressFn | None]:
    """Divide ``progress`` into consecutive parts, one per weight, in order.

    Args:
        progress: the whole job's callback (or ``None``).
        weights: relative cost of each part, as a sequence or as ``{label: weight}`` (the
            label then prefixes that part's messages, e.g. "training · epoch 2/5").
            Non-positive weights get no share of the bar.

    Returns:
        One callback per part (all ``None`` when ``progress`` is ``None``).
    """
    if isinstance(weights, Mapping):
        labels, values = list(weights), [float(w) for w in weights.values()]
    else:
        values = [float(w) for w in weights]
        labels = [""] * len(values)
    values = [max(0.0, w) for w in values]
    total = sum(values) or 1.0
    parts: list[ProgressFn | None] = []
    start = 0.0
    for label, w in zip(labels, values, strict=True):
        end = start + w / total
        parts.append(scaled(progress, start, end, label))
        start = end
    return parts
