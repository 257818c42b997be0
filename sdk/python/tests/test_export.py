"""The adapters `export` makes: output encoding, error mapping, logging of failures."""

from __future__ import annotations

import io
import sys
import unittest
from unittest import mock

from _support import Err, FakeWorld, KvStub, WitEvent, WorldTestCase

import plinth_sdk
from plinth_sdk import (
    CapabilityError,
    InvalidConfig,
    InvalidPayload,
    Plugin,
    PluginFailure,
    encode_output,
    json,
)


def event(payload: bytes = b'"Ada"', topic: str = "greet") -> WitEvent:
    return WitEvent(id="ev-1", topic=topic, payload=payload, tenant="acme", depth=0)


class OutputTest(unittest.TestCase):
    def test_encoding_rules(self):
        self.assertIsNone(encode_output(None))
        self.assertEqual(encode_output(b"\x00raw"), b"\x00raw")
        self.assertEqual(encode_output(bytearray(b"ab")), b"ab")
        self.assertEqual(encode_output(memoryview(b"cd")), b"cd")
        self.assertEqual(encode_output("héllo"), "héllo".encode())
        self.assertEqual(encode_output({"count": 3}), b'{"count":3}')
        self.assertEqual(encode_output([1, "é"]), '[1,"é"]'.encode())
        self.assertEqual(encode_output(7), b"7")
        self.assertEqual(encode_output(False), b"false")

    def test_json_quotes_a_string(self):
        self.assertEqual(json("Hello, Ada!"), b'"Hello, Ada!"')

    def test_what_json_cannot_encode_is_a_plugin_failure(self):
        for value in ({1, 2}, object(), float("nan")):
            with self.assertRaises(PluginFailure) as caught:
                encode_output(value)
            self.assertIn("cannot serialize the output as JSON", str(caught.exception))


class Greeter(Plugin):
    def on_event(self, event):
        return json(f"Hello, {event.json(str)}!")


class Failing(Plugin):
    """Raises what `Failing.raise_` says, in every hook."""

    raise_: BaseException = ValueError("boom")
    calls: list = []

    def on_event(self, event):
        raise self.raise_

    def on_install(self):
        raise self.raise_

    def on_upgrade(self, from_version):
        Failing.calls.append(from_version)
        raise self.raise_

    def on_uninstall(self):
        raise self.raise_


class ExportTest(WorldTestCase):
    def test_export_makes_the_three_classes(self):
        handler, lifecycle, incoming = plinth_sdk.export(Greeter)
        self.assertEqual(
            [c.__name__ for c in (handler, lifecycle, incoming)],
            ["Handler", "Lifecycle", "IncomingHandler"],
        )
        with self.assertRaises(TypeError):
            plinth_sdk.export(object)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            plinth_sdk.export(Greeter())  # type: ignore[arg-type]

    def test_on_event_returns_the_encoded_output(self):
        handler, _, _ = plinth_sdk.export(Greeter)
        with FakeWorld():
            self.assertEqual(handler().on_event(event()), b'"Hello, Ada!"')

    def test_typed_errors_become_their_plugin_error_case(self):
        handler, _, _ = plinth_sdk.export(Failing)
        cases = [
            (InvalidPayload("bad"), "PluginError_InvalidPayload"),
            (InvalidConfig("unset"), "PluginError_InvalidConfig"),
            (CapabilityError("kv.get: down"), "PluginError_Capability"),
            (PluginFailure("nope"), "PluginError_Failed"),
        ]
        for exc, case in cases:
            Failing.raise_ = exc
            with FakeWorld() as world, self.assertRaises(Err) as caught:
                handler().on_event(event())
            self.assertEqual(type(caught.exception.value).__name__, case)
            self.assertEqual(caught.exception.value.value, exc.message)
            # A decision of the plugin is not logged as a crash.
            self.assertEqual(world.log.lines, [])

    def test_any_other_exception_is_failed_with_a_traceback_and_logged(self):
        handler, _, _ = plinth_sdk.export(Failing)
        Failing.raise_ = ZeroDivisionError("division by zero")
        with FakeWorld(types_name="plinth_plugin_types") as world, self.assertRaises(Err) as caught:
            handler().on_event(event(topic="order.created"))
        error = caught.exception.value
        self.assertEqual(type(error).__name__, "PluginError_Failed")
        self.assertTrue(error.value.startswith("ZeroDivisionError: division by zero\nTraceback"))
        self.assertIn("in on_event: raise self.raise_", error.value)
        # The SDK's own frames are left out of the short traceback.
        self.assertNotIn("plinth_sdk", error.value)
        self.assertNotIn(" in _call", error.value)
        [(level, message, fields)] = world.log.lines
        self.assertEqual((level, message), ("error", "on_event failed: ZeroDivisionError"))
        fields = dict(fields)
        self.assertEqual(fields["topic"], "order.created")
        self.assertIn("Traceback (most recent call last)", fields["traceback"])

    def test_even_system_exit_does_not_escape(self):
        handler, _, _ = plinth_sdk.export(Failing)
        Failing.raise_ = SystemExit(3)
        with FakeWorld(), self.assertRaises(Err) as caught:
            handler().on_event(event())
        self.assertEqual(caught.exception.value.value.splitlines()[0], "SystemExit: 3")

    def test_lifecycle_hooks(self):
        _, lifecycle, _ = plinth_sdk.export(Greeter)
        with FakeWorld():
            self.assertIsNone(lifecycle().on_install())
            self.assertIsNone(lifecycle().on_upgrade("0.1.0"))
            self.assertIsNone(lifecycle().on_uninstall())
        _, lifecycle, _ = plinth_sdk.export(Failing)
        Failing.raise_ = InvalidConfig("webhook-url must be https")
        Failing.calls = []
        for call in (
            lambda lc: lc.on_install(),
            lambda lc: lc.on_upgrade("0.0.9"),
            lambda lc: lc.on_uninstall(),
        ):
            with FakeWorld(), self.assertRaises(Err) as caught:
                call(lifecycle())
            self.assertEqual(type(caught.exception.value).__name__, "PluginError_InvalidConfig")
        self.assertEqual(Failing.calls, ["0.0.9"])

    def test_a_plugin_without_on_event_fails_clearly(self):
        class Empty(Plugin):
            pass

        handler, _, _ = plinth_sdk.export(Empty)
        with FakeWorld(), self.assertRaises(Err) as caught:
            handler().on_event(event())
        self.assertEqual(caught.exception.value.value, "Empty does not implement on_event")

    def test_the_payload_is_decoded_with_typed_errors(self):
        handler, _, _ = plinth_sdk.export(Greeter)
        with FakeWorld(), self.assertRaises(Err) as caught:
            handler().on_event(event(b"42"))
        self.assertEqual(
            caught.exception.value.value,
            "the payload of `greet` is not the expected JSON: expected a string, got an integer",
        )

    def test_stdout_and_stderr_are_flushed_after_every_call(self):
        class Printer(Plugin):
            def on_event(self, event):
                print("buffered", end="")
                return None

        handler, _, _ = plinth_sdk.export(Printer)
        out = mock.MagicMock(wraps=io.StringIO())
        with FakeWorld(), mock.patch.object(sys, "stdout", out):
            handler().on_event(event())
        out.flush.assert_called()

    def test_capabilities_missing_from_the_world_name_the_permission(self):
        class UsesKv(Plugin):
            def on_event(self, event):
                return plinth_sdk.kv.get("count")

        handler, _, _ = plinth_sdk.export(UsesKv)
        with FakeWorld(), self.assertRaises(Err) as caught:  # no kv in this world
            handler().on_event(event())
        error = caught.exception.value
        self.assertEqual(type(error).__name__, "PluginError_Capability")
        self.assertIn("kv.get('count')", error.value)
        self.assertIn("[permissions] kv", error.value)
        with FakeWorld(kv=KvStub()):
            self.assertIsNone(handler().on_event(event()))


if __name__ == "__main__":
    unittest.main()
