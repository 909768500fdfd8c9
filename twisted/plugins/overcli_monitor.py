"""twistd plugin ``overcli-monitor``: the agent daemon, imported only when used."""
from twisted.application.service import ServiceMaker

overcli_monitor = ServiceMaker(
    "OverC monitor",
    "overc.agent.tap",
    "OverC agent: runs plugin checks on a schedule and pushes their results",
    "overcli-monitor",
)
