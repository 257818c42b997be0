"""`Event.text` and `Event.json`: decoding with typed errors."""

from __future__ import annotations

import unittest

import _support  # noqa: F401

from plinth_sdk import Event, InvalidPayload


def event(payload: bytes) -> Event:
    return Event(id="1", topic="order.created", tenant="acme", depth=0, payload=payload)


class EventTest(unittest.TestCase):
    def test_text_and_json(self):
        self.assertEqual(event(b'"Ada"').text(), '"Ada"')
        self.assertEqual(event(b'{"n": [1, 2]}').json(), {"n": [1, 2]})
        self.assertEqual(event(b'"Ada"').json(str), "Ada")
        self.assertEqual(event(b"null").json(), None)

    def test_text_that_is_not_utf8_names_the_topic_and_byte(self):
        with self.assertRaises(InvalidPayload) as caught:
            event(b"ok\xff").text()
        self.assertEqual(
            str(caught.exception),
            "the payload of `order.created` is not UTF-8 text: invalid start byte at byte 2",
        )

    def test_invalid_json_names_the_problem(self):
        with self.assertRaises(InvalidPayload) as caught:
            event(b"{oops").json()
        self.assertTrue(
            str(caught.exception).startswith(
                "the payload of `order.created` is not the expected JSON: "
            ),
            str(caught.exception),
        )
        self.assertIn("line 1 column 2", str(caught.exception))

    def test_expected_types(self):
        accepted = [
            (b"1", int),
            (b"1", float),
            (b"1.5", float),
            (b"true", bool),
            (b"[]", list),
            (b"{}", dict),
        ]
        for payload, kind in accepted:
            event(payload).json(kind)
        refused = [
            (b"42", str, "expected a string, got an integer"),
            (b"true", int, "expected an integer, got a boolean"),
            (b"false", float, "expected a number, got a boolean"),
            (b"1.5", int, "expected an integer, got a number"),
            (b"null", dict, "expected an object, got null"),
            (b'"x"', list, "expected an array, got a string"),
        ]
        for payload, kind, why in refused:
            with self.assertRaises(InvalidPayload) as caught:
                event(payload).json(kind)
            self.assertTrue(str(caught.exception).endswith(why), str(caught.exception))

    def test_an_event_is_immutable(self):
        with self.assertRaises(AttributeError):
            event(b"1").topic = "other"  # type: ignore[misc]


if __name__ == "__main__":
    unittest.main()
