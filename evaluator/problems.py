"""Problems found in a submission, and the exception that carries them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem", "SubmissionInvalid", "ProblemLog", "MAX_PROBLEMS"]

#: How many problems a :class:`SubmissionInvalid` keeps; the rest are only counted.
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission, with its place.

    ``row`` is the 1-based line number in the file (the header is row 1).
    ``str(problem)`` reads e.g. ``predictions.csv, row 4, column 'score': 'abc' is not a number``.
    """

    file: str
    row: int | None = None
    column: str | None = None
    case_id: str | None = None
    message: str = ""

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.case_id is not None:
            where.append(f"case {self.case_id!r}")
        return f"{', '.join(where)}: {self.message}"


class SubmissionInvalid(ValueError):
    """The predictions cannot be scored; ``problems`` lists every problem found.

    At most :data:`MAX_PROBLEMS` problems are kept; ``n_more`` counts the others.
    ``str(exc)`` is a readable multi-line message, one problem per line.
    """

    def __init__(self, problems, n_more: int = 0):
        self.problems = list(problems)
        self.n_more = int(n_more)
        super().__init__(self._message())

    def _message(self) -> str:
        total = len(self.problems) + self.n_more
        head = f"{total} problem{'s' if total != 1 else ''} found in the submission:"
        lines = [head] + [f"  {p}" for p in self.problems]
        if self.n_more:
            lines.append(f"  ... and {self.n_more} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._message()


class ProblemLog:
    """Collects problems up to a cap, counting the rest."""

    def __init__(self, file: str, cap: int = MAX_PROBLEMS):
        self.file = file
        self.cap = cap
        self.problems: list[Problem] = []
        self.n_more = 0

    def add(self, message, *, row=None, column=None, case_id=None, file=None):
        if len(self.problems) < self.cap:
            self.problems.append(Problem(file or self.file, row, column, case_id, message))
        else:
            self.n_more += 1

    def __bool__(self):
        return bool(self.problems) or self.n_more > 0

    def raise_if_any(self, exc=SubmissionInvalid):
        if self:
            if exc is SubmissionInvalid:
                raise SubmissionInvalid(self.problems, self.n_more)
            raise exc("\n".join(str(p) for p in self.problems)
                      + (f"\n... and {self.n_more} more" if self.n_more else ""))
