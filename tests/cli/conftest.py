"""The chat tests' stand-in engine, for `nlsql ask`."""

from tests.chat.conftest import stand_in

__all__ = ["stand_in"]
