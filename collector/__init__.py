"""probefleet collector: MQTT -> validation -> InfluxDB, alerts, fleet status, reports."""
