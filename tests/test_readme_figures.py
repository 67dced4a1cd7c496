"""The README check: counts exact, figures that float kernels move within their stated bound."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hyperface.reports import readme
from hyperface.reports.bounds import NUMBER, Bound, departures, numbers

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SHOWN = {m["name"]: m["body"] for m in readme.BLOCK.finditer(README)}


def moved(text: str, index: int, by: float) -> str:
    """``text`` with its ``index``-th number moved by ``by``, written as it was (decimals,
    percent sign, thousands separators)."""
    match = list(NUMBER.finditer(text))[index]
    old = match.group()
    decimals = len(old.rstrip("%").split(".")[1]) if "." in old else 0
    value = float(old.rstrip("%").replace(",", "")) + by
    new = f"{value:,.{decimals}f}" if "," in old else f"{value:.{decimals}f}"
    return text[: match.start()] + new + ("%" if old.endswith("%") else "") + text[match.end() :]


def index_of(text: str, number: str) -> int:
    return [m.group() for m in NUMBER.finditer(text)].index(number)


def test_numbers_are_told_from_words():
    line = "| iresnet18 | VAL@FAR=1e-3 | 4,560 pairs | -16.6 | 10k | 71.2% | 96, 0.92 |"
    assert [n for n, _ in numbers(line)] == ["4,560", "-16.6", "71.2%", "96", "0.92"]


def test_every_figure_the_readme_shows_agrees_with_itself_and_states_its_bound():
    made = {name: SHOWN[name] for name in readme.FIGURES}
    assert readme.differences(README, made) == []
    for name, bound in readme.BOUNDS.items():
        assert bound.caption() in SHOWN[name], f"{name} does not state its bound"


@pytest.mark.parametrize(
    ("name", "number"),
    [("demo-jobs", "31"), ("paper-dry-run", None), ("demo-filters", "180"),
     ("demo-judge", "240"), ("demo-variation", "4,560")],
)  # fmt: skip
def test_a_count_moved_by_one_fails_the_check(name, number):
    body = SHOWN[name]
    index = index_of(body, number) if number else len(list(NUMBER.finditer(body))) - 1
    out = readme.differences(README, {name: moved(body, index, 1)})
    assert len(out) == 1 and out[0].startswith(f"{name}: ") and "beyond ±0" in out[0], out


def _first_bounded(body: str, bound: Bound) -> tuple[int, float]:
    """The index of a figure's first number that may move (not a count), and its bound."""
    return next((i, bound.of(n, where)) for i, (n, where) in enumerate(numbers(body))
                if bound.of(n, where))  # fmt: skip


@pytest.mark.parametrize("name", sorted(readme.BOUNDS))
def test_a_float_figure_passes_within_its_bound_and_fails_beyond(name):
    body, bound = SHOWN[name], readme.BOUNDS[name]
    index, limit = _first_bounded(body, bound)
    assert readme.differences(README, {name: moved(body, index, 0.5 * limit)}) == []
    out = readme.differences(README, {name: moved(body, index, 2 * limit)})
    assert len(out) == 1 and f"beyond ±{limit:g}" in out[0], out


def test_words_and_stated_bounds_compare_exactly():
    body = SHOWN["demo-judge"]
    assert departures(body, body.replace("genuine pairs", "genuine pair"), Bound(1, 1))
    looser = Bound(0.02, 3.0).caption()
    assert departures(body, re.sub(r"<sub>.*</sub>", looser, body), readme.BOUNDS["demo-judge"])


def test_a_figure_the_readme_lacks_is_reported():
    assert readme.differences("no figures here", {"demo-jobs": "31"}) == [
        "demo-jobs: not in the README"
    ]
