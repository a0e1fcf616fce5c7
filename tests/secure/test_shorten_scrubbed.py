"""Issue 25: text is shortened only after credentials are scrubbed from it (DESIGN 13.5).

A proxy that echoes the Basic-auth token into a field of an answer must not leave the
token's first characters in the error: cutting first leaves a prefix the scrubber cannot
recognise."""

from __future__ import annotations

import pytest

from reconciler.connectwise import payload
from reconciler.plan import verify
from reconciler.plan.jsonshape import Obj
from reconciler.secure.scrub import basic_auth_token, shorten

ENV = {
    "CW_COMPANY_ID": "zerotekco",
    "CW_PUBLIC_KEY": "PubKey1234567890",
    "CW_PRIVATE_KEY": "Priv3Key4567890a",
}


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    made = basic_auth_token(f"{ENV['CW_COMPANY_ID']}+{ENV['CW_PUBLIC_KEY']}", ENV["CW_PRIVATE_KEY"])
    assert len(made) > 57  # longer than every cut below
    return made


def _no_part_of(token: str, text: str) -> None:
    assert token[:12] not in text, text
    assert ENV["CW_PRIVATE_KEY"][:8] not in text, text


def test_connectwise_field_echoing_the_token(token: str) -> None:
    with pytest.raises(Exception) as caught:
        payload.company({"id": token, "identifier": "ACME", "name": "Acme"})
    _no_part_of(token, str(caught.value))
    assert "redacted" in str(caught.value)


def test_saved_plan_shape_error_echoing_the_token(token: str) -> None:
    with pytest.raises(ValueError) as caught:
        Obj({"after": "x" * 3 + token}, "customers/0").integer("after")
    _no_part_of(token, str(caught.value))


def test_verify_difference_echoing_the_token(token: str) -> None:
    found = verify.differences({"name": "x" + token}, {"name": "y"})
    assert found
    _no_part_of(token, "\n".join(found))


def test_shorten_scrubs_the_whole_text_first(token: str) -> None:
    text = shorten("proxy said: Basic " + token + " please retry", 40)
    assert len(text) <= 40
    _no_part_of(token, text)
    assert shorten("short", 40) == "short"
    assert shorten("a\nb\tc", 40) == "a b c"
