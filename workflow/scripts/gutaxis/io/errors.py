"""User-facing input errors: one clear message per problem, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem found in one input.

    Parameters
    ----------
    file : str
        The file (or config key) the problem is in, as the user named it.
    where : str
        Row, column or key that is wrong, e.g. ``"row 12 (sample S07)"`` or
        ``"column 'timepoint'"``.
    what : str
        What is wrong, stated plainly.
    fix : str
        What the user should change.
    """

    file: str
    where: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.what}. Fix: {self.fix}"


class InputError(Exception):
    """All problems found in the inputs, reported together.

    ``str(err)`` is the message printed to the user: one line per problem.
    """

    def __init__(self, problems: list[Problem] | Problem):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(self.message())

    def message(self) -> str:
        n = len(self.problems)
        head = f"gutaxis found {n} problem{'s' if n != 1 else ''} in the inputs:"
        return "\n".join([head] + [f"  - {p}" for p in self.problems])


@dataclass
class ProblemCollector:
    """Collect problems while checking a file, then raise them all at once."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, file: str, where: str, what: str, fix: str) -> None:
        self.problems.append(Problem(file, where, what, fix))

    def extend(self, other: "ProblemCollector") -> None:
        self.problems.extend(other.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise InputError(self.problems)

    def __bool__(self) -> bool:
        return bool(self.problems)
