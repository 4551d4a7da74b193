"""Webhook notifier: POST a JSON document, ours or shaped for a chat bot (Telegram, Slack).

Templates: ``json`` sends the alert document as is (see lifecycle.Alert.document);
``telegram`` sends Bot API ``sendMessage`` parameters (``url`` =
``https://api.telegram.org/bot<token>/sendMessage``, ``chat_id`` set); ``slack`` sends
``{"text": ...}`` (Slack, Mattermost, Rocket.Chat incoming webhooks). Any 2xx is success.
"""

from __future__ import annotations

from typing import Any

import httpx
from probefleet.collector.alerts.outbox import DeliveryError
from probefleet.collector.alerts.rules import Webhook


def render(cfg: Webhook, doc: dict[str, Any]) -> dict[str, Any]:
    text = str(doc.get("text", ""))
    if cfg.template == "telegram":
        return {"chat_id": cfg.chat_id, "text": text, "disable_web_page_preview": True}
    if cfg.template == "slack":
        return {"text": text}
    return doc


class WebhookSender:
    def __init__(self, cfg: Webhook) -> None:
        self.cfg = cfg

    def send(self, doc: dict[str, Any]) -> None:
        try:
            response = httpx.post(
                self.cfg.url, json=render(self.cfg, doc), timeout=self.cfg.timeout_s
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {exc!r}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook answered HTTP {response.status_code}")
