"""A method a path does not serve answers 405 with an `Allow` naming exactly the documented ones.

Before, Starlette answered from the first route whose path matched, so `OPTIONS
/api/v1/chat/sessions` said `Allow: POST` although GET is served there too.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def test_unsupported_methods_answer_405_with_the_documented_allow(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    checked = 0
    for path, operations in schema["paths"].items():
        documented = sorted(m.upper() for m in operations)
        concrete = re.sub(r"{\w+}", "00000000-0000-0000-0000-000000000000", path)
        for method in METHODS:
            if method in documented:
                continue
            response = client.request(method, concrete)
            assert response.status_code == 405, (method, path, response.status_code)
            allow = sorted(m.strip() for m in response.headers["allow"].split(","))
            assert allow == documented, (method, path, allow)
            assert response.json()["error"]["code"] == "method_not_allowed"
            checked += 1
    assert checked > 150
