"""Found while probing hostile input, left for the owner of `backend/core/` (input hygiene):
a multipart text field that is not UTF-8 is read as Latin-1 and stored as mojibake (the note of
a layer import: b"\\xff\\xfe bad" is stored as "ÿþ bad", a UTF-8-encoded lone surrogate as
"í\\xa0\\x80"), where the contract's answer to text it cannot read is a 422. The fix belongs in
`core.hygiene._check_multipart` (refuse a text part whose bytes do not decode as UTF-8), which
this branch may not touch; the test is kept strict so it turns green the day that lands."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.chat.conftest import Caller


@pytest.mark.xfail(strict=True, reason="core.hygiene reads non-UTF-8 form text as Latin-1")
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
    assert response.json()["error"]["code"] == "validation_error"
