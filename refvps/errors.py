"""Errors that carry every problem found, each naming the file it concerns."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (a file or folder) and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class RefvpsError(Exception):
    """Base class of refvps errors meant to be shown to a user as they are."""


class MaskError(RefvpsError, ValueError):
    """A mask file that cannot be used (unreadable, wrong mode, wrong bit depth)."""

    def __init__(self, path: str | Path, what: str):
        self.path = str(path)
        self.what = what
        super().__init__(f"{self.path}: {what}")


class InputFileError(MaskError):
    """An input file that is not what it must be (not a regular file, too large, not a PNG);
    raised by :mod:`refvps.inputs` before anything is decoded."""


class UsageError(RefvpsError, ValueError):
    """An option value that does not exist for the chosen benchmark (e.g. an unknown split)."""


class ValidationError(RefvpsError):
    """Every problem found in a dataset or a predictions folder, reported at once."""

    def __init__(self, title: str, problems: list[Problem], hint: str = ""):
        self.title = title
        self.problems = list(problems)
        self.hint = hint
        super().__init__(self.render())

    def render(self, limit: int = 200) -> str:
        lines = [f"{self.title}: {len(self.problems)} problem(s)"]
        lines += [f"  - {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


class DataNotFoundError(RefvpsError):
    """The dataset root could not be found; the message says where we looked and how to fix it."""


class ModelError(RefvpsError, ValueError):
    """A model that cannot be found or built as asked (unknown name or argument)."""
