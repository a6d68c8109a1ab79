"""The one domain error type that services raise, with a stable machine code per problem."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError


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

    `status` is the HTTP status the API answers with: 400 for malformed input, 403 when the actor
    may not act, 404 for a missing object, 409 when the record's state refuses the action.
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


def problems_from_validation_error(error: ValidationError) -> list[Problem]:
    problems = []
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            for item in errors:
                message = item.message % item.params if item.params else item.message
                field_name = None if field == "__all__" else field
                problems.append(Problem(item.code or "invalid", str(message), field_name))
    else:
        for item in error.error_list:
            message = item.message % item.params if item.params else item.message
            problems.append(Problem(item.code or "invalid", str(message), None))
    return problems
