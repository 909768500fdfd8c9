"""The baseline of bench/ingest.py: a bare Klein route that parses the JSON body and answers 200.

Default twisted.web Site and Request, as a newcomer would write it: what a database-less
Klein service costs on this machine, measured in the same run as OverC. With ``tuned`` it skips
form parsing as OverC's Site does, to show how much of the gap is that one setting.
"""
import json
import sys

from klein import Klein
from twisted.internet import endpoints, reactor
from twisted.web.server import Site

app = Klein()


@app.route("/api/set/service/status", methods=["POST"])
def status(request):
    json.loads(request.content.read())
    request.setHeader(b"Content-Type", b"application/json")
    return b'{"ok":1}'


if __name__ == "__main__":
    # "tuned": the one Site setting OverC uses too (no form parsing, see PERF-NOTES).
    tuned = len(sys.argv) > 2 and sys.argv[2] == "tuned"
    endpoint = endpoints.serverFromString(reactor, f"tcp:{sys.argv[1]}:interface=127.0.0.1")
    endpoint.listen(Site(app.resource(), parsePOSTFormSubmission=not tuned))
    reactor.run()
