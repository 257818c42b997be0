"""Error mapping, exception descriptions, traceback capping."""

from __future__ import annotations

import unittest

import _support  # noqa: F401 — puts the SDK on the path

from plinth_sdk import errors
from plinth_sdk.errors import (
    CapabilityError,
    InvalidConfig,
    InvalidPayload,
    PluginFailure,
    cut_utf8,
    describe_exception,
    error_kind,
    error_message,
)


def raised(fn, *args):
    """The exception `fn(*args)` raises, with its traceback."""
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("did not raise")


def parse(text):
    return int(text)


def recurse(n):
    if n == 0:
        raise KeyError("bottom")
    return recurse(n - 1)


class ErrorKindTest(unittest.TestCase):
    def test_each_plugin_error_maps_to_its_case(self):
        cases = {
            InvalidPayload("p"): "invalid-payload",
            InvalidConfig("c"): "invalid-config",
            CapabilityError("k"): "capability",
            PluginFailure("f"): "failed",
            ValueError("v"): "failed",
            KeyboardInterrupt(): "failed",
        }
        for exc, kind in cases.items():
            self.assertEqual(error_kind(exc), kind, repr(exc))

    def test_a_plugin_error_carries_its_message_alone(self):
        self.assertEqual(error_message(InvalidPayload("expected a name")), "expected a name")
        self.assertEqual(str(InvalidConfig("x is required")), "x is required")

    def test_a_huge_plugin_error_message_is_capped(self):
        message = error_message(PluginFailure("x" * 100_000))
        self.assertLessEqual(len(message.encode()), errors.MAX_ERROR_BYTES)
        self.assertTrue(message.endswith("…"))


class DescribeExceptionTest(unittest.TestCase):
    def test_names_type_message_and_the_frames_of_the_plugin(self):
        text = describe_exception(raised(parse, "x"))
        lines = text.splitlines()
        self.assertEqual(lines[0], "ValueError: invalid literal for int() with base 10: 'x'")
        self.assertEqual(lines[1], "Traceback (most recent call last):")
        self.assertIn("test_errors.py", text)
        self.assertIn("in parse: return int(text)", text)
        self.assertIn("in raised: fn(*args)", text)

    def test_a_chained_cause_is_named(self):
        def wrap():
            try:
                parse("y")
            except ValueError as err:
                raise RuntimeError("loading failed") from err

        lines = describe_exception(raised(wrap)).splitlines()
        self.assertEqual(lines[0], "RuntimeError: loading failed")
        self.assertEqual(
            lines[1], "caused by ValueError: invalid literal for int() with base 10: 'y'"
        )

    def test_a_module_qualifies_a_non_builtin_type(self):
        class Custom(Exception):
            pass

        Custom.__module__ = "mylib.errors"
        self.assertTrue(describe_exception(Custom("boom")).startswith("mylib.errors.Custom: boom"))

    def test_an_exception_without_message_shows_its_type(self):
        self.assertEqual(describe_exception(KeyError()), "KeyError")

    def test_recursion_is_collapsed_and_only_the_innermost_frames_kept(self):
        text = describe_exception(raised(recurse, 50))
        self.assertIn("[previous frame repeated", text)
        self.assertLessEqual(text.count("in recurse"), 3)

    def test_distinct_frames_past_the_limit_are_counted(self):
        def chain(n):
            # Each level is a different line, so nothing collapses.
            code = "def f0():\n    raise ValueError('deep')\n" + "".join(
                f"def f{i}():\n    return f{i - 1}()\n" for i in range(1, n)
            )
            namespace: dict = {}
            exec(compile(code, "/1/app.py", "exec"), namespace)  # noqa: S102 — builds frames
            return namespace[f"f{n - 1}"]

        text = describe_exception(raised(chain(20)))
        self.assertIn("earlier frames omitted", text)
        frames = [line for line in text.splitlines() if " in f" in line]
        self.assertEqual(len(frames), errors.MAX_FRAMES)
        # componentize-py's mount prefix is dropped; the innermost frame is last.
        self.assertTrue(frames[-1].strip().startswith("app.py:2 in f0"), frames[-1])

    def test_the_description_fits_the_budget_and_keeps_the_headline(self):
        exc = raised(parse, "z" * 50_000)
        for budget in (3072, 600, 200):
            text = describe_exception(exc, max_bytes=budget)
            self.assertLessEqual(len(text.encode()), budget)
            self.assertTrue(text.startswith("ValueError: invalid literal"), text[:80])

    def test_a_broken_str_does_not_hide_the_failure(self):
        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no")

        self.assertIn("could not be rendered", describe_exception(Weird()))


class HelpersTest(unittest.TestCase):
    def test_cut_utf8_never_splits_a_character(self):
        text = "é" * 10  # two bytes each
        cut = cut_utf8(text, 8)
        self.assertLessEqual(len(cut.encode()), 8)
        self.assertTrue(cut.endswith("…"))
        cut.encode("utf-8")  # valid UTF-8
        self.assertEqual(cut_utf8("short", 8), "short")

    def test_short_paths(self):
        short = errors._short_path
        self.assertEqual(short("/1/app.py"), "app.py")
        self.assertEqual(short("/0/plinth_sdk/kv.py"), "plinth_sdk/kv.py")
        self.assertEqual(short("/usr/lib/python3/site-packages/pkg/mod.py"), "pkg/mod.py")
        self.assertEqual(short("/home/dev/plugins/x/app.py"), "x/app.py")


if __name__ == "__main__":
    unittest.main()
