#!/bin/sh
# HTTP check.  http.sh URL [EXPECTED_STATUS] [TIMEOUT]   (defaults: 200, 10 s)
# OK when the URL answers with the expected status in time; WARN on another status; FAIL when
# it cannot be reached. Response time goes out as performance data. Needs curl.
url="$1"; expect="${2:-200}"; timeout="${3:-10}"
if [ -z "$url" ]; then
    echo "usage: http.sh URL [EXPECTED_STATUS] [TIMEOUT]"
    exit 3
fi
command -v curl >/dev/null 2>&1 || { echo "curl is not installed"; exit 3; }
out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time "$timeout" -- "$url" 2>&1)
rc=$?
code=${out%% *}; took=${out#* }
if [ $rc -ne 0 ] || [ "$code" = "000" ]; then
    echo "HTTP FAIL - $url unreachable (curl exit $rc)"
    exit 2
fi
perf="time=${took}s;;;0;$timeout"
if [ "$code" = "$expect" ]; then
    echo "HTTP OK - $url answered $code in ${took} s | $perf"
    exit 0
fi
echo "HTTP WARN - $url answered $code, expected $expect | $perf"
exit 1
