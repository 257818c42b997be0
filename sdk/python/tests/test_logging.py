"""`plinth_sdk.log` and the `logging` handler: levels, fields, installation."""

from __future__ import annotations

import io
import logging
import unittest
from contextlib import redirect_stderr

from _support import FakeWorld, WorldTestCase

from plinth_sdk import log
from plinth_sdk.log import Level, PlinthLogHandler, install_logging, level_for


class LevelTest(unittest.TestCase):
    def test_logging_levels_map_to_plinth_levels(self):
        table = {
            logging.NOTSET: Level.TRACE,
            5: Level.TRACE,
            logging.DEBUG: Level.DEBUG,
            15: Level.DEBUG,
            logging.INFO: Level.INFO,
            logging.WARNING: Level.WARN,
            35: Level.WARN,
            logging.ERROR: Level.ERROR,
            logging.CRITICAL: Level.ERROR,
            100: Level.ERROR,
        }
        for levelno, level in table.items():
            self.assertIs(level_for(levelno), level, levelno)


class WriteTest(WorldTestCase):
    def test_helpers_write_their_level_with_fields_as_text(self):
        with FakeWorld() as world:
            log.trace("t")
            log.debug("d", n=1)
            log.info("i", name="Ada", ok=True)
            log.warn("w")
            log.warning("w2")
            log.error("e", raw=b"\xffx")
            log.write(Level.INFO, "pairs", [("a", 1), ("a", 2)])
        self.assertEqual(
            world.log.lines,
            [
                ("trace", "t", []),
                ("debug", "d", [("n", "1")]),
                ("info", "i", [("name", "Ada"), ("ok", "True")]),
                ("warn", "w", []),
                ("warn", "w2", []),
                ("error", "e", [("raw", "\ufffdx")]),
                ("info", "pairs", [("a", "1"), ("a", "2")]),
            ],
        )

    def test_without_bindings_lines_go_to_stderr(self):
        err = io.StringIO()
        with redirect_stderr(err):
            log.info("hello", k="v")
        self.assertEqual(err.getvalue(), "[info] hello k=v\n")

    def test_text_the_host_cannot_take_is_cleaned_not_lost(self):
        with FakeWorld() as world:
            original = world.log.module.write

            def picky(level, message, fields):
                message.encode("utf-8")  # lone surrogates cannot cross the boundary
                original(level, message, fields)

            world.log.module.write = picky
            log.info("bad \ud800 text")
        self.assertEqual(world.log.lines, [("info", "bad ? text", [])])


class HandlerTest(WorldTestCase):
    def setUp(self):
        super().setUp()
        self.logger = logging.getLogger("plinth-test")
        self.logger.propagate = False
        self.handler = PlinthLogHandler()
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG)

    def tearDown(self):
        self.logger.removeHandler(self.handler)

    def test_records_become_lines_with_logger_extra_and_exception(self):
        with FakeWorld() as world:
            self.logger.debug("debugging %s", "x")
            self.logger.info("order %d", 42, extra={"order": "42", "tenant": "acme"})
            self.logger.warning("careful")
            try:
                _ = 1 / 0
            except ZeroDivisionError:
                self.logger.exception("failed")
            self.logger.critical("down")
        lines = world.log.lines
        self.assertEqual(
            [(level, message) for level, message, _ in lines],
            [
                ("debug", "debugging x"),
                ("info", "order 42"),
                ("warn", "careful"),
                ("error", "failed"),
                ("error", "down"),
            ],
        )
        self.assertEqual(
            lines[1][2], [("logger", "plinth-test"), ("order", "42"), ("tenant", "acme")]
        )
        exception = dict(lines[3][2])["exception"]
        self.assertIn("ZeroDivisionError: division by zero", exception)

    def test_the_root_logger_omits_its_name(self):
        record = logging.LogRecord("root", logging.INFO, __file__, 1, "hi", None, None)
        with FakeWorld() as world:
            self.handler.handle(record)
        self.assertEqual(world.log.lines, [("info", "hi", [])])


class InstallTest(unittest.TestCase):
    def test_import_installs_one_handler_at_debug_and_install_is_idempotent(self):
        root = logging.getLogger()
        saved = root.level
        try:
            ours = [h for h in root.handlers if isinstance(h, PlinthLogHandler)]
            self.assertEqual(len(ours), 1, "import plinth_sdk installs exactly one handler")
            again = install_logging(logging.INFO)
            self.assertIs(again, ours[0])
            self.assertEqual(len([h for h in root.handlers if isinstance(h, PlinthLogHandler)]), 1)
            self.assertEqual(root.level, logging.INFO)
        finally:
            root.setLevel(saved)

    def test_the_default_level_lets_debug_through(self):
        root = logging.getLogger()
        saved = root.level
        try:
            install_logging()
            self.assertTrue(root.isEnabledFor(logging.DEBUG))
        finally:
            root.setLevel(saved)


if __name__ == "__main__":
    unittest.main()
