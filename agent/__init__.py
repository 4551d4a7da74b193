"""probefleet agent: runs on a probe, measures, spools and publishes results."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("probefleet-agent")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
