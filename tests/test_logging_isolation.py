"""A test that configures logging (as ``service.cli.main`` does) leaves no root handler behind: one
writing to that test's captured stderr made later tests' services print "Logging error" tracebacks
once pytest had closed it. The two tests run in file order; the second checks what the first left."""

from __future__ import annotations

import logging
import logging.config

from service import logs


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if not type(h).__module__.startswith("_pytest")]


def test_a_test_may_configure_logging_as_the_cli_does() -> None:
    logging.config.dictConfig(logs.log_config("text", "info"))
    assert _ours()


def test_the_next_test_finds_no_handler_left_on_the_root_logger() -> None:
    assert not _ours()
