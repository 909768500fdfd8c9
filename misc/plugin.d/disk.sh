#!/bin/sh
# Disk use of one file system.  disk.sh [PATH] [WARN%] [CRIT%]   (defaults: / 90 95)
# WARN at WARN% used, FAIL at CRIT% used; the use goes out as performance data.
path="${1:-/}"; warn="${2:-90}"; crit="${3:-95}"
line=$(df -P -- "$path" 2>&1 | tail -n 1)
used=$(printf '%s\n' "$line" | awk '{ sub("%", "", $5); print $5 }')
case "$used" in
    ''|*[!0-9]*) echo "cannot read disk use of $path: $line"; exit 3 ;;
esac
perf="'$path'=${used}%;$warn;$crit;0;100"
if [ "$used" -ge "$crit" ]; then
    echo "DISK FAIL - $path ${used}% used | $perf"; exit 2
elif [ "$used" -ge "$warn" ]; then
    echo "DISK WARN - $path ${used}% used | $perf"; exit 1
fi
echo "DISK OK - $path ${used}% used | $perf"
exit 0
