"""``twistd -ny overc.tac``: the server from a .tac file; the config path comes from OVERC_CONFIG."""
import os
import sys

from twisted.application import service

from overc.config import ConfigError
from overc.tap import build_server, config_from_options

try:
    _config = config_from_options({}, dict(os.environ))
except ConfigError as error:
    sys.exit(f"overc: config error: {error}")

application = service.Application("overc")
build_server(_config, exit_on_failure=True).service.setServiceParent(application)
