"""Alerting: rules as data (rules.py; values computed from the radio kind: derived.py),
firing and resolving (evaluate.py), the alert life cycle (lifecycle.py), commune incidents
(incidents.py), state from older versions brought to today's keys (migrate.py), notifiers
(webhook.py, email.py, mqttnotify.py) fed through a durable outbox (outbox.py), and the
engine that wires them to the collector (engine.py)."""
