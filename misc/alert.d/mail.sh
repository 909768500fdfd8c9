#!/bin/sh
# OverC command channel: mail every notification through the local sendmail (Postfix, Exim,
# msmtp, nullmailer ... all install one).
#
#   [alert:mail]
#   command = ./alert.d/mail.sh ops@example.com oncall@example.com
#
# The subject is the first line of the text OverC writes on stdin (the alert, or the summary
# line of a group of alerts); the body is the whole text plus the link to the OverC UI from
# OVERC_URL (set [overc] public-url for it). Environment, all optional:
#   SENDMAIL   the sendmail program (default /usr/sbin/sendmail)
#   MAIL_FROM  the sender address (default: sendmail's own, usually overc@<host>)
# For SMTP without a local sendmail, use a channel with `smtp = ...` instead.
set -u

if [ "$#" -eq 0 ]; then
    echo "usage: mail.sh ADDRESS [ADDRESS...]" >&2
    exit 2
fi
for address in "$@" ${MAIL_FROM:+"$MAIL_FROM"}; do
    # Plain addresses only: nothing that could smuggle a header or an option to sendmail.
    case "$address" in
        -* | *[!A-Za-z0-9.@_+=-]* | *@*@* | @* | *@) bad=yes ;;
        *@*) bad=no ;;
        *) bad=yes ;;
    esac
    if [ "$bad" = yes ]; then
        echo "mail.sh: not a plain e-mail address: $address" >&2
        exit 2
    fi
done

sendmail=${SENDMAIL:-/usr/sbin/sendmail}
if [ ! -x "$sendmail" ]; then
    echo "mail.sh: $sendmail is not an executable sendmail program (set SENDMAIL)" >&2
    exit 1
fi

body=$(cat)
# One line, no control characters, at most 200 characters: a header must not be broken.
subject=$(printf '%s\n' "$body" | head -n 1 | tr -d '\000-\037\177' | cut -c 1-200)
if [ "${OVERC_NOTIFICATION_KIND:-alert}" = repeat ]; then
    subject="Repeat: $subject"
fi
recipients=$(printf '%s, ' "$@")

{
    if [ -n "${MAIL_FROM:-}" ]; then
        printf 'From: %s\n' "$MAIL_FROM"
    fi
    printf 'To: %s\n' "${recipients%, }"
    printf 'Subject: [OverC] %s\n' "$subject"
    printf 'MIME-Version: 1.0\n'
    printf 'Content-Type: text/plain; charset=UTF-8\n'
    printf 'Content-Transfer-Encoding: 8bit\n'
    case "${OVERC_NOTIFICATION_ID:-}" in
        '' | *[!0-9]*) ;;
        *) printf 'X-OverC-Notification: %s\n' "$OVERC_NOTIFICATION_ID" ;;
    esac
    printf '\n%s\n' "$body"
    if [ -n "${OVERC_URL:-}" ]; then
        printf '\n%s\n' "$OVERC_URL"
    fi
} | if [ -n "${MAIL_FROM:-}" ]; then
    "$sendmail" -i -f "$MAIL_FROM" -- "$@"
else
    "$sendmail" -i -- "$@"
fi
