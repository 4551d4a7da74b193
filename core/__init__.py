"""probefleet core: what both programs share (wire contract, config kit, MQTT client settings).

It imports neither the agent nor the collector; both import it."""
