"""E-mail notifier: SMTP with STARTTLS and authentication (smtplib), one message per event."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from probefleet.collector.alerts.outbox import DeliveryError
from probefleet.collector.alerts.rules import Email


def message(cfg: Email, doc: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.to)
    msg["Subject"] = str(doc.get("text", "probefleet alert"))[:200]
    body = [str(doc.get("text", ""))]
    body += [f"{k}: {v}" for k, v in doc.items() if k != "text"]
    msg.set_content("\n".join(body))
    return msg


class EmailSender:
    def __init__(self, cfg: Email) -> None:
        self.cfg = cfg

    def send(self, doc: dict[str, Any]) -> None:
        cfg = self.cfg
        try:
            with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
                if cfg.starttls:
                    context = ssl.create_default_context(cafile=cfg.ca_file or None)
                    smtp.starttls(context=context)
                if cfg.username:
                    smtp.login(cfg.username, cfg.password)
                smtp.send_message(message(cfg, doc))
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            raise DeliveryError(f"e-mail via {cfg.host}:{cfg.port}: {exc!r}") from exc
