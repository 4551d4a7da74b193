"""probefleet collector: MQTT -> validation -> InfluxDB, alerts, fleet status, reports."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("probefleet-collector")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
