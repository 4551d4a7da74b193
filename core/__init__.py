"""probefleet core: what both programs share (wire contract, config kit, MQTT client settings).

It imports neither the agent nor the collector; both import it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("probefleet")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
