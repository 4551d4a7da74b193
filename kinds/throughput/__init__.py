"""The `throughput` measurement kind: its code, helpers, config, field table and tests."""
