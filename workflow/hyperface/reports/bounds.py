"""How far a figure may move on another x86 CPU, and the check that holds a figure to it.

Floating-point kernels differ between CPUs (AVX2, AVX-512, AMX; oneDNN's and MKL's blocking by
cache size), so a figure computed from embeddings, distances or a trained model moves a little
from one machine to the next, while counts - jobs, images, identities, what a filter kept - must
not move at all. A :class:`Bound` states how far each kind of number in one figure may move:
numbers written without a decimal point are counts and compare exactly; numbers with one move
within ``decimal`` (in their own units), percentages within ``percent`` points, and a table
column or row can carry a bound of its own. Everything that is not a number compares exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# a number standing alone (not part of a word such as iresnet18 or 1e-3), with its
# thousands separators and an optional percent sign
NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:,\d{3})*(?:\.\d+)?%?(?![\w.]*\w)")
CAPTION = "<sub>"


@dataclass(frozen=True)
class Bound:
    """How far one figure's numbers may move on another CPU (none: every number exact)."""

    decimal: float = 0.0
    percent: float = 0.0
    # table columns (by header) and rows (by first cell) whose decimals have a bound of their own
    labels: dict[str, float] = field(default_factory=dict)

    def of(self, number: str, where: tuple[str, ...] | None) -> float:
        """The bound of one number as written (0 for a count or a label's number), ``where`` it
        stands: its table column's header and its row's first cell."""
        if "." not in number or where is None:
            return 0.0
        for label in where:
            if label in self.labels:
                return self.labels[label]
        return self.percent if number.endswith("%") else self.decimal

    def caption(self) -> str:
        """The bound in words, as the README states it under the figure (empty when exact)."""
        parts = [f"{name} within ±{b:g}" for name, b in self.labels.items()]
        if self.decimal:
            parts.append(f"other decimals within ±{self.decimal:g}" if parts
                         else f"decimals within ±{self.decimal:g}")  # fmt: skip
        if self.percent:
            parts.append(f"percentages within ±{self.percent:g} points")
        if not parts:
            return ""
        return f"{CAPTION}On another x86 CPU: {'; '.join(parts)}; counts exact.</sub>"


EXACT = Bound()


def _value(number: str) -> float:
    return float(number.rstrip("%").replace(",", ""))


def _located(line: str, header: list[str] | None) -> list[tuple[str, tuple[str, ...] | None]]:
    """(number, (column header, row label)) for each number of one line of a table, (number,
    ()) outside one, and (number, None) for a number that is part of a label - in the header
    row (see numbers) or a row's first cell (a setting such as "FAR 0.01"), compared exactly."""
    cells = [cell.strip() for cell in line.split("|")]
    if header is None or len(cells) != len(header):
        return [(m.group(), ()) for m in NUMBER.finditer(line)]
    return [(m.group(), None if j <= 1 else (head, cells[1]))
            for j, (cell, head) in enumerate(zip(cells, header, strict=True))
            for m in NUMBER.finditer(cell)]  # fmt: skip


def numbers(text: str) -> list[tuple[str, tuple[str, ...] | None]]:
    """Every number of a figure, with the column header and row label it stands under (None
    for a number inside a label)."""
    found: list[tuple[str, tuple[str, ...] | None]] = []
    header: list[str] | None = None
    for line in text.strip().splitlines():
        if not line.startswith("|"):
            header = None
            found += _located(line, None)
        elif header is None:  # a table's header row: its numbers are labels
            header = [cell.strip() for cell in line.split("|")]
            found += [(m.group(), None) for m in NUMBER.finditer(line)]
        else:
            found += _located(line, header)
    return found


def _split(text: str) -> tuple[str, str]:
    """A figure's body and its caption (the bound in words), each stripped."""
    lines = text.strip().splitlines()
    caption = [line for line in lines if line.startswith(CAPTION)]
    body = [line for line in lines if not line.startswith(CAPTION)]
    return "\n".join(body).strip(), "\n".join(caption)


def departures(shown: str, made: str, bound: Bound) -> list[str]:
    """How ``made`` departs from ``shown`` beyond ``bound``, in words (empty: it agrees).

    The words around the numbers and the caption must be equal; each number may move by its
    bound.
    """
    (shown_body, shown_caption), (made_body, made_caption) = _split(shown), _split(made)
    if shown_caption != made_caption:
        return [f"caption {shown_caption!r} is now {made_caption!r}"]
    if NUMBER.sub("#", shown_body) != NUMBER.sub("#", made_body):
        return ["the text around the numbers differs"]
    out = []
    pairs = zip(numbers(shown_body), numbers(made_body), strict=True)
    for (old, where), (new, _) in pairs:
        limit = bound.of(new, where)
        if old != new and (limit == 0.0 or abs(_value(old) - _value(new)) > limit + 1e-9):
            label = f" ({' / '.join(where)})" if where else ""
            out.append(f"{old} is now {new}{label}, beyond ±{limit:g}")
    return out
