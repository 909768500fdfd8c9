"""Pins the private Twisted behaviour our request path relies on (see PERF-NOTES).

Twisted parses the Content-Type of every form-like POST with an EmailMessage (~0.13 ms); our
Site is built with ``parsePOSTFormSubmission=False`` so JSON pushes skip it. If a Twisted
upgrade moves that parsing elsewhere, these tests say so.
"""
from __future__ import annotations

import json

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Site

from overc.web.site import OvercRequest, make_site


class Echo(Resource):
    isLeaf = True

    def render_POST(self, request):
        return json.dumps({"args": sorted(k.decode() for k in request.args),
                           "body": request.content.read().decode()}).encode()


async def post_form(site):
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        response = await treq.post(
            f"http://127.0.0.1:{port.getHost().port}/x", data=b"a=1&b=2",
            headers={b"Content-Type": [b"application/x-www-form-urlencoded"]})
        return json.loads(await response.content())
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_our_site_never_parses_the_content_type(monkeypatch):
    calls = []
    original = http._parseContentType
    monkeypatch.setattr(http, "_parseContentType", lambda line: calls.append(line) or
                        original(line))
    # A default Site does parse it: proves the probe sees the private call at all.
    assert (await post_form(Site(Echo())))["args"] == ["a", "b"]
    assert len(calls) == 1
    answer = await post_form(make_site(Echo()))
    assert answer == {"args": [], "body": "a=1&b=2"}  # the body stays whole for JSON parsing
    assert len(calls) == 1


def test_our_request_is_the_sites_request_factory():
    assert make_site(Echo()).requestFactory is OvercRequest
