"""Service states and the names clients may use for them (OverC 1.x aliases included).

The one spelling of the state tuple: alert severities, channel filters and metrics codes all
use :data:`STATES` and its order.
"""
from __future__ import annotations

OK, WARN, FAIL, UNK = "OK", "WARN", "FAIL", "UNK"
#: 1.x order (``state_t``): UNK ranks above FAIL, so ``min-severity = FAIL`` still gets UNK.
STATES = (OK, WARN, FAIL, UNK)

_ALIASES = {
    "OK": OK,
    "WARN": WARN,
    "WARNING": WARN,
    "FAIL": FAIL,
    "ERR": FAIL,
    "CRIT": FAIL,
    "CRITICAL": FAIL,
    "UNK": UNK,
    "UNKNOWN": UNK,
}


def map_state(sent: str) -> tuple[str, str]:
    """Return ``(state, info_suffix)``: an unsupported state becomes UNK with a note (1.x)."""
    state = _ALIASES.get(sent.strip().upper())
    if state is not None:
        return state, ""
    return UNK, f' (sent unsupported state: "{sent}")'
