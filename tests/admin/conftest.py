"""The admin tests use the same user and token builders as the observability tests."""

from tests.observability.conftest import admin, make_account, viewer

__all__ = ["admin", "make_account", "viewer"]
