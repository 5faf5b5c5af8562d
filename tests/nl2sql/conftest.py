"""The chat tests' callers and stand-in engine, shared with the query tests."""

from tests.chat.conftest import caller, other_caller, stand_in

__all__ = ["caller", "other_caller", "stand_in"]
