"""Logging: event-style messages with fields in `extra`; plain or JSON lines on stdout."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`time level logger event key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        return f"{base} {extras}".rstrip()


def configure_logging(level: str = "INFO", json_output: bool = False) -> None:
    """Send the `api` and `workers` loggers to stdout once."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter()
        if json_output
        else PlainFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    for name in ("api", "workers"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())  # HERALD_LOG_LEVEL=warning also configures gunicorn
        logger.propagate = False
