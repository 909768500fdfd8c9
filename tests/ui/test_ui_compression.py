"""gzip for the pages (only when asked, ``Vary: Accept-Encoding``, never the push/JSON APIs) and
the per-response masking of the CSRF token that makes compression safe (BREACH)."""
from __future__ import annotations

import gzip
import re
import urllib.request
from urllib.parse import urlencode

import pytest
import pytest_twisted

import treq
from treq.testing import RequestTraversalAgent
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.web.http_headers import Headers

from overc.web.auth import mask_token, unmask_token
from overc.web.compress import accepts_gzip
from realserver import running_server
from test_ui_routes import login
from ui_fakes import FORM, Harness, cookie_header

GZIP = {"Accept-Encoding": "gzip, deflate, br"}


def _token(body: bytes) -> str:
    return re.search(rb'data-csrf="([^"]+)"', body).group(1).decode()


async def raw(h: Harness, url: str, headers: dict[str, str]):
    """A GET whose body comes as sent (treq's client would gunzip it and drop the header)."""
    agent = RequestTraversalAgent(h.root)
    heads = Headers({k.encode(): [v.encode()] for k, v in headers.items()})

    async def go():
        response = await agent.request(b"GET", b"http://overc.test" + url.encode(), heads)
        return response, await treq.content(response)  # as sent: no gunzip here

    d = ensureDeferred(go())
    done: list = []
    d.addBoth(lambda r: done.append(r) or r)
    for _ in range(4000):  # the pumping of Harness.pump
        agent.flush()
        if done:
            break
        await deferLater(reactor, 0.002, lambda: None)
    return await d


def _varies(response) -> bool:
    return any(b"accept-encoding" in v.lower()
               for v in response.headers.getRawHeaders(b"vary", []))


@pytest_twisted.ensureDeferred
async def test_every_page_masks_its_csrf_token_afresh_and_each_verifies(ui_db):
    h = Harness(ui_db)
    cookies = await login(h)
    disk = ui_db.ids["disk"]
    tokens = []
    for _ in range(2):
        _, body = await h.request("GET", f"/ui/service/{disk}", headers=cookie_header(cookies))
        tokens.append(_token(body))
        # the forms of one page carry that page's token
        assert set(re.findall(rb'name="csrf" value="([^"]+)"', body)) == {tokens[-1].encode()}
    first, second = tokens
    assert first != second
    assert unmask_token(first) == unmask_token(second)  # one secret under two pads
    headers = {**FORM, **cookie_header(cookies)}

    async def ack(token: str) -> int:
        response, _ = await h.request("POST", f"/ui/service/{disk}/ack", headers=headers,
                                      data=urlencode({"comment": "x", "csrf": token}).encode())
        return response.code

    # tampered: one character of the masked half, of the pad, a token cut short, the secret
    # itself unmasked (it never appears in a page), not base64 at all
    middle = len(first) // 2
    for bad in (first[:-3] + ("A" if first[-3] != "A" else "B") + first[-2:],
                ("A" if first[0] != "A" else "B") + first[1:],
                first[:middle],
                first[: len(first) - 4],
                "é" * len(first), first + "AAAA"):
        assert await ack(bad) == 403, bad
    assert not (await h.queries.service(disk)).acked
    assert await ack(first) == 303
    assert await ack(second) == 303


def test_mask_round_trip_and_shape():
    secret = bytes(range(32))
    masked = {mask_token(secret) for _ in range(50)}
    assert len(masked) == 50
    assert all(unmask_token(m) == secret for m in masked)
    assert unmask_token("not base64 !!") is None
    assert unmask_token(mask_token(secret[:16])) is None  # the wrong length


@pytest.mark.parametrize("header, expected", [
    (None, False), ("", False), ("gzip", True), ("deflate, gzip;q=0.5", True),
    ("gzip;q=0", False), ("gzip; q=0.0, *", False), ("*", True), ("*;q=0", False),
    ("br", False), ("identity", False), ("x-gzip", True), ("GZIP", True),
    ("gzip;q=nonsense", False), ("notgzip", False),
])
def test_accept_encoding(header, expected):
    class Request:
        def getHeader(self, name):
            assert name == b"accept-encoding"
            return None if header is None else header.encode()

    assert accepts_gzip(Request()) is expected


@pytest_twisted.ensureDeferred
async def test_pages_are_gzipped_only_when_asked(ui_db):
    h = Harness(ui_db)
    cookies = await login(h)
    plain, plain_body = await raw(h, "/ui/", cookie_header(cookies))
    assert plain.code == 200 and plain.headers.getRawHeaders(b"content-encoding") is None
    assert _varies(plain)
    packed, packed_body = await raw(h, "/ui/", {**cookie_header(cookies), **GZIP})
    assert packed.code == 200
    assert packed.headers.getRawHeaders(b"content-encoding") == [b"gzip"]
    assert _varies(packed)
    page = gzip.decompress(packed_body)
    assert b"<h1>Overview</h1>" in page and len(packed_body) < len(page)
    # the same page but for the masked token and the ETag (two representations, two tags)
    varying = rb'data-csrf="[^"]+"|value="[A-Za-z0-9_-]{86}"|name="overc-etag" content="[^"]+"'
    assert re.sub(varying, b"", page) == re.sub(varying, b"", plain_body)
    # each ETag revalidates to a 304 that still varies
    plain_tag = plain.headers.getRawHeaders(b"etag")[0]
    packed_tag = packed.headers.getRawHeaders(b"etag")[0]
    assert plain_tag != packed_tag
    again, body = await raw(h, "/ui/", {**cookie_header(cookies), **GZIP,
                                        "If-None-Match": packed_tag.decode()})
    assert again.code == 304 and body == b"" and _varies(again)
    # gzip refused explicitly: plain
    refused, _ = await raw(h, "/ui/", {**cookie_header(cookies),
                                       "Accept-Encoding": "gzip;q=0"})
    assert refused.headers.getRawHeaders(b"content-encoding") is None
    # the JSON read API is never compressed
    api, api_body = await raw(h, "/api/servers", {**cookie_header(cookies), **GZIP})
    assert api.code == 200 and api.headers.getRawHeaders(b"content-encoding") is None
    assert api_body.startswith(b"{") or api_body.startswith(b"[")


def _get(url: str, headers: dict) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, \
            response.read()


def test_real_server_gzips_pages_not_the_push_api(tmp_path):
    """The composition root's thread-pool compressor, on a real process (open mode)."""
    with running_server(tmp_path) as server:
        services = [{"name": f"svc{i:03d}", "state": "OK", "info": f"fine {i}"}
                    for i in range(300)]  # a page past the thread-pool threshold
        status, head, body = server.post("/api/set/service/status", {
            "server": {"name": "web1", "key": "k"}, "period": 60, "services": services},
            headers={**GZIP, "Content-Type": "application/json"})
        assert status == 200 and body == {"ok": 1} or body.get("ok"), body
        assert "content-encoding" not in {k.lower() for k in head}
        status, head, body = _get(server.url + "ui/", GZIP)
        assert status == 200 and head.get("content-encoding") == "gzip"
        assert "accept-encoding" in head.get("vary", "").lower()
        page = gzip.decompress(body)
        assert b"svc299" in page and len(body) * 5 < len(page)
        status, head, plain = _get(server.url + "ui/", {})
        assert head.get("content-encoding") is None and b"svc299" in plain
        status, head, body = _get(server.url + "api/servers", GZIP)
        assert status == 200 and head.get("content-encoding") is None
        assert b"svc299" in body


@pytest_twisted.ensureDeferred
async def test_static_text_files_are_gzipped_when_asked(ui_db):
    from overc.ui.rendering import STATIC_DIR

    h = Harness(ui_db)
    for name in ("overc.css", "overc.js", "favicon.svg"):
        with open(f"{STATIC_DIR}/{name}", "rb") as f:
            content = f.read()
        packed, body = await raw(h, f"/ui/static/{name}?v=1", GZIP)
        assert packed.code == 200 and _varies(packed), name
        assert packed.headers.getRawHeaders(b"content-encoding") == [b"gzip"], name
        assert gzip.decompress(body) == content
        assert packed.length == len(body)  # Content-Length, as the client parsed it
        plain, body = await raw(h, f"/ui/static/{name}?v=1", {})
        assert plain.headers.getRawHeaders(b"content-encoding") is None and body == content
        assert _varies(plain)
    kind = packed.headers.getRawHeaders(b"content-type")[0]
    assert kind.startswith(b"image/svg"), kind
    missing, _ = await raw(h, "/ui/static/nothing.css", GZIP)
    assert missing.code == 404
