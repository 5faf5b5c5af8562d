"""The admin tests use the same user and token builders as the observability tests."""

from tests.observability.conftest import admin_account, make_account, viewer_account

__all__ = ["admin_account", "make_account", "viewer_account"]
