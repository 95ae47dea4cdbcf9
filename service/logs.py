"""Structured logs: one JSON object per line, never image bytes, user ids hashed on request.

The CLI hands :func:`log_config` to uvicorn, which applies it in every worker process; code logs
:func:`user_ref` of a user id, never the raw id when ``EMODRIFT_LOG_HASH_USER_IDS`` is on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from service.config import get_settings

# LogRecord attributes that are not "extra" fields a caller attached
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName", "color_message"}


def user_ref(user_id: str) -> str:
    """How a user appears in logs: the id, or a stable pseudonym when EMODRIFT_LOG_HASH_USER_IDS is on."""
    if get_settings().log_hash_user_ids:
        return "u_" + hashlib.sha256(user_id.encode()).hexdigest()[:16]
    return user_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                # bytes never reach a log line: an image would be a privacy leak and a huge line
                entry[key] = f"<{len(value)} bytes>" if isinstance(value, (bytes, bytearray)) else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_config(fmt: str = "json", level: str = "info") -> dict[str, Any]:
    """A logging dictConfig for uvicorn (applied in each worker): everything through one handler."""
    quiet = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "service.logs.JsonFormatter"},
            "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": fmt}},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {"uvicorn": quiet, "uvicorn.error": quiet, "uvicorn.access": quiet},
    }
