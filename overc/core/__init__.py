"""The domain floor: plain data and pure functions (``now`` is an argument).

Nothing here imports Twisted, speaks SQL or touches a file or socket, so every rule of OverC
(states, reports, deadlines, alerts, routing, the watchdog's decisions) tests fast and alone.
Every other package may import from here; this package imports nothing else of OverC.
"""
