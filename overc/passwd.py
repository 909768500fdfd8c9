"""``overc-passwd``: print the hash of a password for ``[ui] users``.

A terminal tool, so it lives outside the core: it reads the terminal, the core only hashes.
"""
from __future__ import annotations

import getpass
import sys

from overc.core.passwords import hash_secret


def main(argv: list[str] | None = None) -> int:
    """Print the hash of a password read from the terminal (or one line of stdin)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print("usage: overc-passwd [USER]\n"
              "Reads a password (twice on a terminal) and prints the value for [ui] users.")
        return 0
    user = args[0] if args else None
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("overc-passwd: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("overc-passwd: empty password", file=sys.stderr)
        return 2
    encoded = hash_secret(password)
    print(f"{user}:{encoded}" if user else encoded)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
