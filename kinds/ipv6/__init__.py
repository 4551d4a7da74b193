"""The `ipv6` measurement kind: its code, helpers, config, field table and tests."""
