#!/bin/sh
# Is a process running?  running.sh NAME [MIN]
# OK when at least MIN (default 1) processes have exactly this name, FAIL otherwise.
# Output follows the Nagios plugin format; the count goes out as performance data.
name="$1"; min="${2:-1}"
if [ -z "$name" ]; then
    echo "usage: running.sh NAME [MIN]"
    exit 3
fi
count=$(pgrep -x -c -- "$name" 2>/dev/null)
if [ -z "$count" ]; then
    echo "cannot count processes (is pgrep installed?)"
    exit 3
fi
if [ "$count" -ge "$min" ]; then
    echo "$name: $count running | procs=$count;;$min;0"
    exit 0
fi
echo "$name: $count running, expected at least $min | procs=$count;;$min;0"
exit 2
