"""The quickstart demo: a simulated province (Mosquitto, InfluxDB, nginx, collector, agents)
on this machine. Run it with `make demo`; not part of the installed package."""
