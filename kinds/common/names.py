"""Syntax of host names in config: DNS labels, letters, digits, ``-`` and ``_``."""

from __future__ import annotations

import re

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
# Labels joined by single dots (no optional separators: those made the match exponential
# on a bad name), at most 253 characters, an optional final dot.
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")


def is_host_name(text: str) -> bool:
    return _HOST_NAME.match(text) is not None
