"""The one domain error type that services raise, with a stable machine code per problem."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One unmet rule: a stable machine `code`, a human `message`, and the `field` it concerns."""

    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class DomainError(Exception):
    """Raised by services when a rule refuses an action. Carries every problem found, not the first.

    `status` is the HTTP status the API answers with: 400 for malformed input, 403 when the actor may
    not act, 404 for a missing object, 409 when the record's state refuses the action.
    """

    def __init__(self, problems: list[Problem] | Problem, *, status: int = 409) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        if not self.problems:
            raise ValueError("DomainError needs at least one problem")
        self.status = status
        super().__init__("; ".join(f"{p.code}: {p.message}" for p in self.problems))

    @classmethod
    def single(
        cls, code: str, message: str, *, field: str | None = None, status: int = 409
    ) -> DomainError:
        return cls(Problem(code=code, message=message, field=field), status=status)

    @property
    def codes(self) -> list[str]:
        return [problem.code for problem in self.problems]
