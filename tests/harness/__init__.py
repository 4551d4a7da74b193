"""Real-service test harness: Mosquitto, InfluxDB (+ nginx front), nginx test server, waits."""

from .httpserver import GiB, Nginx, NginxTestServer, http_get
from .influx import InfluxDB, InfluxQueryError, InfluxTarget, quote_ident
from .mosquitto import Mosquitto, MosquittoFactory
from .ports import connect_once, free_port, port_is_free, wait_port
from .wait import ServiceExited, ServiceProcess, eventually, find_binary, log_tail

__all__ = [
    "GiB",
    "InfluxDB",
    "InfluxQueryError",
    "InfluxTarget",
    "Mosquitto",
    "MosquittoFactory",
    "Nginx",
    "NginxTestServer",
    "ServiceExited",
    "ServiceProcess",
    "connect_once",
    "eventually",
    "find_binary",
    "free_port",
    "http_get",
    "log_tail",
    "port_is_free",
    "quote_ident",
    "wait_port",
]
