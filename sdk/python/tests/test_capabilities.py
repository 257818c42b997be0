"""kv, config and events wrappers over the (stubbed) bindings, and the bindings lookup."""

from __future__ import annotations

from _support import (
    ConfigStub,
    EmitDepthExceeded,
    EmitRateLimited,
    EventsStub,
    FakeWorld,
    KvQuotaExceeded,
    KvStub,
    KvUnavailable,
    KvValueTooLarge,
    WorldTestCase,
)

from plinth_sdk import CapabilityError, InvalidConfig, PluginFailure, _bindings, config, events, kv


class KvTest(WorldTestCase):
    def test_round_trips(self):
        store = KvStub()
        with FakeWorld(kv=store):
            self.assertIsNone(kv.get("missing"))
            kv.set("greeting", "héllo")
            self.assertEqual(store.store["greeting"], "héllo".encode())
            self.assertEqual(kv.get("greeting"), "héllo".encode())
            self.assertEqual(kv.get_text("greeting"), "héllo")
            kv.set_json("state", {"seen": 3})
            self.assertEqual(store.store["state"], b'{"seen":3}')
            self.assertEqual(kv.get_json("state"), {"seen": 3})
            self.assertIsNone(kv.get_json("missing"))
            self.assertTrue(kv.delete("greeting"))
            self.assertFalse(kv.delete("greeting"))

    def test_set_refuses_values_that_are_not_bytes_or_text(self):
        with FakeWorld(kv=KvStub()), self.assertRaises(TypeError) as caught:
            kv.set("n", 3)  # type: ignore[arg-type]
        self.assertIn("use kv.set_json", str(caught.exception))

    def test_corrupt_stored_values_are_plugin_failures(self):
        store = KvStub()
        store.store.update({"bin": b"\xff", "text": b"not json"})
        with FakeWorld(kv=store):
            with self.assertRaises(PluginFailure):
                kv.get_text("bin")
            with self.assertRaises(PluginFailure) as caught:
                kv.get_json("text")
        self.assertIn("the kv value under 'text' is not JSON", str(caught.exception))

    def test_keys_pages_through_every_key(self):
        store = KvStub(page_size=2)
        for key in ("user/c", "user/a", "other", "user/b", "user/d", "user/e"):
            store.store[key] = b"1"
        with FakeWorld(kv=store):
            self.assertEqual(
                list(kv.keys("user/")), ["user/a", "user/b", "user/c", "user/d", "user/e"]
            )
            page = kv.list_keys("user/", None, 10)
        self.assertEqual(page.keys, ["user/a", "user/b"])
        self.assertEqual(page.next_cursor, "user/b")
        self.assertEqual(
            [cursor for _, cursor, _ in store.list_calls[:3]], [None, "user/b", "user/d"]
        )

    def test_errors_name_the_call_and_the_reason(self):
        store = KvStub()
        cases = [
            (
                KvQuotaExceeded("bytes quota of 1024 would be passed"),
                "quota-exceeded",
                "kv.set('big'): kv quota exceeded: bytes quota of 1024 would be passed",
            ),
            (
                KvValueTooLarge(65536),
                "value-too-large",
                "kv.set('big'): kv value too large: the limit is 65536 bytes",
            ),
            (KvUnavailable("busy"), "unavailable", "kv.set('big'): kv store unavailable: busy"),
        ]
        for error, reason, message in cases:
            store.fail_with = error
            with FakeWorld(kv=store), self.assertRaises(kv.KvError) as caught:
                kv.set("big", b"x")
            self.assertIsInstance(caught.exception, CapabilityError)
            self.assertEqual(caught.exception.reason, reason)
            self.assertEqual(str(caught.exception), message)

    def test_without_the_permission(self):
        with FakeWorld(), self.assertRaises(CapabilityError) as caught:
            kv.get("count")
        self.assertEqual(
            str(caught.exception),
            "kv.get('count'): this plugin was built without the kv capability; declare "
            "`[permissions] kv = { max-bytes = … }` in plinth.toml and rebuild",
        )


class ConfigTest(WorldTestCase):
    def test_values(self):
        stub = ConfigStub(
            {
                "url": "https://x",
                "unset": None,
                "n": " 42 ",
                "neg": "-3",
                "on": "true",
                "off": "false",
            }
        )
        with FakeWorld(config=stub):
            self.assertEqual(config.get("url"), "https://x")
            self.assertIsNone(config.get("unset"))
            self.assertEqual(config.get_required("url"), "https://x")
            self.assertEqual(config.get_int("n"), 42)
            self.assertEqual(config.get_int("neg"), -3)
            self.assertIsNone(config.get_int("unset"))
            self.assertIs(config.get_bool("on"), True)
            self.assertIs(config.get_bool("off"), False)
            self.assertIsNone(config.get_bool("unset"))

    def test_a_missing_or_mistyped_value_is_invalid_config(self):
        stub = ConfigStub({"unset": None, "n": "4x", "b": "yes"})
        with FakeWorld(config=stub):
            with self.assertRaises(InvalidConfig) as caught:
                config.get_required("unset")
            self.assertEqual(str(caught.exception), "config key `unset` is required but not set")
            with self.assertRaises(InvalidConfig):
                config.get_int("n")
            with self.assertRaises(InvalidConfig):
                config.get_bool("b")

    def test_an_undeclared_key_is_a_capability_error(self):
        with FakeWorld(config=ConfigStub({})), self.assertRaises(CapabilityError) as caught:
            config.get("nope")
        self.assertIn("config key `nope` is not declared in the manifest", str(caught.exception))
        self.assertNotIsInstance(caught.exception, InvalidConfig)


class EventsTest(WorldTestCase):
    def test_payload_encoding(self):
        stub = EventsStub({"t"})
        with FakeWorld(events=stub):
            events.emit("t", {"order": 42})
            events.emit("t", "plain")
            events.emit("t", b"\x00")
            events.emit("t")
            events.emit_json("t", "quoted")
        self.assertEqual(
            [payload for _, payload in stub.emitted],
            [b'{"order":42}', b"plain", b"\x00", b"", b'"quoted"'],
        )

    def test_refusals(self):
        stub = EventsStub({"t"})
        with FakeWorld(events=stub):
            with self.assertRaises(events.EmitError) as caught:
                events.emit("other", {})
            self.assertEqual(caught.exception.reason, "undeclared-topic")
            self.assertEqual(
                str(caught.exception),
                "events.emit('other'): cannot emit on `other`: the manifest does not declare it",
            )
            for error, reason, text in (
                (EmitDepthExceeded(8), "depth-exceeded", "the event depth limit of 8 is reached"),
                (EmitRateLimited(), "rate-limited", "too many events in this call"),
            ):

                def refuse(topic, payload, error=error):
                    from _support import Err

                    raise Err(error)

                stub.module.emit = refuse
                with self.assertRaises(events.EmitError) as caught:
                    events.emit("t", {})
                self.assertEqual(caught.exception.reason, reason)
                self.assertTrue(str(caught.exception).endswith(text), str(caught.exception))


class BindingsTest(WorldTestCase):
    def test_plinth_types_under_either_name(self):
        for name in ("types", "plinth_plugin_types"):
            with FakeWorld(types_name=name) as world:
                self.assertIs(_bindings.plinth_types(), world.types)

    def test_preload_finds_what_the_world_has(self):
        self.assertEqual(_bindings.preload(), [])
        with FakeWorld(kv=KvStub(), events=EventsStub(set())):
            self.assertEqual(_bindings.preload(), ["log", "kv", "events", "types"])

    def test_a_broken_bindings_module_is_not_mistaken_for_a_missing_one(self):
        import sys

        class Finder:
            """Finds `wit_world.imports.kv`, whose import fails on another module."""

            @staticmethod
            def find_spec(name, path=None, target=None):
                if name == "wit_world.imports.kv":
                    raise ModuleNotFoundError("No module named 'somelib'", name="somelib")
                return None

        with FakeWorld():
            self.assertIsNone(_bindings._load("kv"))  # missing: not granted
            sys.meta_path.insert(0, Finder)
            try:
                with self.assertRaises(ModuleNotFoundError) as caught:
                    _bindings.capability("kv", "kv.get('x')")
                self.assertEqual(caught.exception.name, "somelib")
            finally:
                sys.meta_path.remove(Finder)
