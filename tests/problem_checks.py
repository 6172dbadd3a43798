"""Shared checks for the "every problem at once" error paths."""
from __future__ import annotations

import pytest

from refvps.errors import ValidationError
from refvps.evaluation import evaluate


def evaluation_problems(preds, benchmark: str, data, **kwargs) -> str:
    """The text of the ValidationError that evaluating ``preds`` must raise."""
    with pytest.raises(ValidationError) as info:
        evaluate(preds, benchmark, data, workers=1, progress=False, **kwargs)
    return str(info.value)


def assert_each_once(problems: list[str], expected: list[str]) -> None:
    """Every expected text appears in exactly one problem, and there are no other problems."""
    for text in expected:
        assert sum(text in p for p in problems) == 1, (text, problems)
    assert len(problems) == len(expected), problems
