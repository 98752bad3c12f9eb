"""Who the local cloud says you are: its fake credentials and its one account.

A module of its own so that code talking to a local cloud in another process (the app's
:mod:`amibake.core.local.process`, targets) need not import moto to know them.
"""

from __future__ import annotations

#: Fake credentials the local cloud accepts (any would do; these are conventional).
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"
#: The account every local cloud's resources belong to.
DEFAULT_ACCOUNT = "123456789012"
