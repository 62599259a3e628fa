"""Vote primitives: the k-of-n majority of yes/no votes and Cohen's kappa.

Apart from :class:`~qa_core.matrix.cells.Matrix` and the agreement reports, so that cells and
agreement both build on them without importing each other.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Consensus", "Majority", "cohen_kappa", "majority"]

Majority = Literal["yes", "no", "tie", ""]


@dataclass(frozen=True, slots=True)
class Consensus:
    """How the models voted on one (paper, question): ``majority`` is '' when nobody voted."""

    yes: int
    no: int
    majority: Majority

    @property
    def votes(self) -> int:
        return self.yes + self.no

    @property
    def agreement(self) -> float | None:
        """Share of the votes that agree with the majority (0.5 for a tie; None: no votes)."""
        return max(self.yes, self.no) / self.votes if self.votes else None

    @property
    def disagreement(self) -> bool:
        return bool(self.yes and self.no)


def majority(votes: Sequence[bool | None]) -> Consensus:
    """k-of-n majority of yes/no votes; None (failed or undecided) does not vote."""
    yes = sum(v is True for v in votes)
    no = sum(v is False for v in votes)
    winner: Majority = "" if not yes + no else "yes" if yes > no else "no" if no > yes else "tie"
    return Consensus(yes, no, winner)


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> float | None:
    """Cohen's κ = (po − pe) / (1 − pe) over the items both raters rated (None = not rated).

    κ is 1.0 when pe == po == 1 (both raters used one and the same category throughout) and
    None when no item was rated by both.
    """
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        return None
    n = len(pairs)
    po = sum(x == y for x, y in pairs) / n
    categories = {x for x, _ in pairs} | {y for _, y in pairs}
    pe = sum(
        (sum(x == c for x, _ in pairs) / n) * (sum(y == c for _, y in pairs) / n)
        for c in categories
    )
    if pe == 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1.0 - pe)
