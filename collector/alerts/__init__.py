"""Alerting: rules as data (rules.py), firing and resolving (evaluate.py), the alert life
cycle (lifecycle.py), notifiers (webhook.py, email.py, mqttnotify.py) fed through a durable
outbox (outbox.py), and the engine that wires them to the collector (engine.py)."""
