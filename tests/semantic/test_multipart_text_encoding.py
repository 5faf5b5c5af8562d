"""Found while probing hostile input: a multipart text field that is not UTF-8 was read as
Latin-1 and stored as mojibake (the note of a layer import: b"\\xff\\xfe bad" was stored as
"ÿþ bad", a UTF-8-encoded lone surrogate as "í\\xa0\\x80"), where the contract's answer to text
it cannot read is a 422. `core.hygiene._check_multipart` now refuses a text part whose bytes do
not decode as UTF-8."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.chat.conftest import Caller


@pytest.mark.parametrize("note", [b"\xff\xfe bad", b"\xed\xa0\x80 surrogate"])
def test_a_form_text_field_that_is_not_utf8_is_a_422(
    client: TestClient, caller: Caller, note: bytes
) -> None:
    boundary = "b0undary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="layer.yaml"\r\n'
            "Content-Type: application/yaml\r\n\r\ninstructions: [a]\n\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="note"\r\n\r\n'
        ).encode()
        + note
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer/import",
        content=body,
        headers={**caller.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["errors"][0]["loc"] == ["form", "note"]
    assert error["details"]["errors"][0]["type"] == "invalid_utf8"
