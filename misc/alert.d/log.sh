#!/bin/sh
# OverC command channel: append every notification to a log file, each line stamped in UTC.
#
#   [alert:log]
#   command = ./alert.d/log.sh /var/log/overc/alerts.log
#
# The notification text arrives on stdin (one block per alert, see docs/channels.md):
#   2026-01-05T10:15:02Z web1 disk: [service:state/WARN] State changed: "OK" -> "WARN"
#   2026-01-05T10:15:02Z Current: WARN: DISK WARNING - /var 91%
# A repeated notification (channel option `repeat`) is marked "[repeat]" after the stamp.
# Exit 0 tells OverC the notification is delivered; anything else makes it retry later.
set -u

file=${1:-}
if [ -z "$file" ]; then
    echo "usage: log.sh FILE" >&2
    exit 2
fi

prefix=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
if [ "${OVERC_NOTIFICATION_KIND:-alert}" = repeat ]; then
    prefix="$prefix [repeat]"
fi

# Build the whole entry first and append it with one write, so that two deliveries running
# at the same time do not interleave their lines.
entry=$(awk -v prefix="$prefix" '{ print prefix " " $0 }')
if [ -z "$entry" ]; then
    entry="$prefix (empty notification)"
fi
printf '%s\n' "$entry" >> "$file" || exit 1
