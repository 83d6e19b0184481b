"""How strong a staff password must be: zxcvbn's estimate of how hard it is to guess (score 0 to
4), at least 3 for a therapist and 4 for an admin, who can add and disable accounts. A refusal
says, in plain words, what makes it weak and what to do instead."""

from __future__ import annotations

from zxcvbn import zxcvbn

from shared.auth import Role
from shared.errors import InvalidInput

MIN_LENGTH = 10
MIN_SCORE: dict[Role, int] = {"therapist": 3, "admin": 4}
# zxcvbn's work grows with length; a longer password is scored on its first this many characters.
SCORED_LENGTH = 100
ADVICE = "Use four or more unrelated words, or a long random password from a password manager."


class WeakPassword(InvalidInput):
    """The password is too short or too easy to guess for the role."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="password")


def check_password(password: str, *, role: Role, email: str) -> None:
    """Refuse (:class:`WeakPassword`) a password too weak for ``role``. The account's email and
    the product's name count as known to an attacker."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_LENGTH} characters. {ADVICE}")
    known = [email, *email.replace(".", "@").split("@"), "handoff", "clinic", "massage"]
    estimate = zxcvbn(password[:SCORED_LENGTH], user_inputs=known)
    if estimate["score"] >= MIN_SCORE[role]:
        return
    feedback = estimate["feedback"]
    why = " ".join(filter(None, [feedback.get("warning"), *feedback.get("suggestions", [])]))
    whose = "an admin's password" if role == "admin" else "this password"
    raise WeakPassword(f"{whose} is too easy to guess. {why + ' ' if why else ''}{ADVICE}")
