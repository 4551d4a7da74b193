"""MQTT notifier: every active alert as a retained message, cleared when it resolves.

Topic ``<root>/_alerts/<probe>/<rule>[/<row>...]`` (``_`` cannot start a probe id, so no
probe can publish there under the ACL ``pattern write <root>/%u/#``). Subscribe to
``<root>/_alerts/#`` to get every active alert at once, e.g. on a control-room display.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_UNSAFE = re.compile(r"[+#/\x00]")
Publish = Callable[[str, bytes, bool], None]


def alert_topic(root: str, doc: dict[str, Any]) -> str:
    labels: dict[str, str] = doc.get("labels", {})
    rows = [v for k, v in labels.items() if k not in {"probe", "commune", "district"}]
    parts = [labels.get("probe", "_fleet"), str(doc["rule"]), *rows]
    return "/".join([root, "_alerts", *(_UNSAFE.sub("_", p) or "_" for p in parts)])


class MqttAlertSender:
    def __init__(self, root: str, publish: Publish) -> None:
        self.root = root
        self._publish = publish

    def send(self, doc: dict[str, Any]) -> None:
        firing = doc.get("event") == "firing"
        payload = json.dumps(doc, ensure_ascii=False).encode() if firing else b""
        self._publish(alert_topic(self.root, doc), payload, True)
