from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from asyncapi_gw.pointers import escape_token, pointer_to, unescape_token


def test_escape_token() -> None:
    assert escape_token("a/b~c") == "a~1b~0c"
    assert escape_token("~1") == "~01"
    assert escape_token(3) == "3"


def test_pointer_to() -> None:
    assert pointer_to() == ""
    assert pointer_to("channels", "/rooms/{id}", "publish") == "/channels/~1rooms~1{id}/publish"
    assert pointer_to("tags", 0, "") == "/tags/0/"


@given(st.text())
def test_unescape_inverts_escape(token: str) -> None:
    escaped = escape_token(token)
    assert "/" not in escaped
    assert unescape_token(escaped) == token
