"""The password policy: length, variety, not the email, not a common password."""

from __future__ import annotations

import string

from backend.auth.errors import WeakPassword

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# Lower-cased; a password equal to one of these (ignoring case) is refused. A short list on
# purpose: length and variety do most of the work, this catches the famous ones that pass them.
COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "password1234",
        "password12345",
        "password!123",
        "passw0rd123",
        "p@ssw0rd123",
        "p@ssword123",
        "qwerty12345",
        "qwerty123456",
        "qwertyuiop1",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abc1234567",
        "abcd123456",
        "iloveyou123",
        "welcome123",
        "welcome1234",
        "letmein1234",
        "admin12345",
        "administrator1",
        "changeme123",
        "sunshine123",
        "football123",
        "baseball123",
        "monkey12345",
        "dragon12345",
        "trustno1234",
        "1234567890a",
        "a1234567890",
        "zaq12wsxcde",
    }
)


def _character_classes(password: str) -> int:
    classes = (
        any(c in string.ascii_lowercase for c in password),
        any(c in string.ascii_uppercase for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password) or any(not c.isascii() for c in password),
    )
    return sum(classes)


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """What is wrong with `password` under the policy; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    if password and _character_classes(password) < 2:
        problems.append(
            "Mix at least two kinds of characters (lower case, upper case, digits, symbols)."
        )
    if len(set(password)) <= 2 and password:
        problems.append("Do not repeat one or two characters.")
    lowered = password.strip().lower()
    if email:
        normalized = email.strip().lower()
        if lowered in (normalized, normalized.split("@", 1)[0]):
            problems.append("Do not use your email address as the password.")
    if lowered in COMMON_PASSWORDS:
        problems.append("This password is too common.")
    return problems


def ensure_password_policy(password: str, *, email: str | None = None) -> None:
    """Raise `WeakPassword` (422) listing every problem of a password."""
    problems = password_problems(password, email=email)
    if problems:
        raise WeakPassword(details={"field": "password", "problems": problems})
