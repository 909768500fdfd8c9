"""twistd plugin ``overc``: names the composition root, imports it only when used."""
from twisted.application.service import ServiceMaker

overc = ServiceMaker(
    "OverC",
    "overc.tap",
    "OverC push monitoring server (run: twistd -n overc server)",
    "overc",
)
