"""providers/http.py: the request the adapters send is the one httpx's build_request would build."""

import asyncio

import httpx
import orjson
import pytest

from providers.http import upstream_request


@pytest.mark.parametrize(
    ("base", "path", "query"),
    [
        ("https://api.example.test/v1", "/chat/completions", None),
        ("https://api.example.test/v1/", "/chat/completions", {}),
        ("https://g.example.test", "/v1beta/models/gemini-x:streamGenerateContent", {"alt": "sse"}),
    ],
)
def test_the_same_request_as_build_request(base: str, path: str, query: dict[str, str] | None) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo \u2028 there"}], "stream": True}
    headers = {"Authorization": "Bearer sk-x"}
    timeout = httpx.Timeout(65, connect=5, pool=60)

    async def both() -> tuple[httpx.Request, httpx.Request, httpx.Request]:
        async with httpx.AsyncClient(base_url=base) as client:
            expected = client.build_request("POST", path, json=body, params=query, headers=headers, timeout=timeout)
            first = upstream_request(client, "POST", path, query=query, headers=headers, body=body, timeout=timeout)
            again = upstream_request(client, "POST", path, query=query, headers=headers, body=body, timeout=timeout)
            return expected, first, again

    expected, first, again = asyncio.run(both())
    for request in (first, again):
        assert request.method == expected.method and request.url == expected.url
        assert orjson.loads(request.content) == orjson.loads(expected.content)
        assert request.extensions == expected.extensions
        # The same headers, but for the body's length (orjson writes no spaces and UTF-8 as it is).
        assert {k: v for k, v in request.headers.items() if k != "content-length"} == {
            k: v for k, v in expected.headers.items() if k != "content-length"
        }
        assert request.headers["content-length"] == str(len(request.content))
