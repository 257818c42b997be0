"""A stand-in for the generated `wasi:http` bindings: enough of `wasi_http_types`,
`outgoing_handler`, `streams` and `poll` for the SDK's client and server, with a scripted peer.

Every resource records its drop in `HttpStub.log`; dropping a parent before its child, or
finishing a body whose stream is alive, fails the test as the host would trap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from _support import Err, Ok, _module, _variant

METHODS = ("Get", "Head", "Post", "Put", "Delete", "Connect", "Options", "Trace", "Patch")
ERROR_CODES = ("HttpRequestDenied", "ConnectionRefused", "ConnectionTimeout")

StreamClosed = _variant("StreamError", "Closed", payload=False)
StreamFailed = _variant("StreamError", "LastOperationFailed")
HeaderForbidden = _variant("HeaderError", "Forbidden", payload=False)


@dataclass
class InternalErrorCode:
    value: str | None


InternalErrorCode.__name__ = "ErrorCode_InternalError"


class Resource:
    """A resource handle: `__exit__` drops it once; children must go first."""

    def __init__(self, stub: HttpStub, name: str, parent: Resource | None = None) -> None:
        self.stub, self.name, self.parent = stub, name, parent
        self.children: list[Resource] = []
        self.dropped = False
        if parent is not None:
            parent.children.append(self)

    def __enter__(self) -> Resource:
        return self

    def __exit__(self, *exc: object) -> None:
        assert not self.dropped, f"{self.name} dropped twice"
        alive = [child.name for child in self.children if not child.dropped]
        assert not alive, f"{self.name} dropped before its children {alive}"
        self.dropped = True
        self.stub.log.append(f"drop {self.name}")


class Fields(Resource):
    def __init__(
        self, stub: HttpStub, entries: list[tuple[str, bytes]], parent: Resource | None = None
    ):
        super().__init__(stub, "fields", parent)
        self.items = list(entries)

    def entries(self) -> list[tuple[str, bytes]]:
        return list(self.items)


class OutputStream(Resource):
    def __init__(self, stub: HttpStub, parent: Resource, sink: bytearray) -> None:
        super().__init__(stub, "output-stream", parent)
        self.sink = sink

    def blocking_write_and_flush(self, contents: bytes) -> None:
        assert len(contents) <= 4096, "blocking-write-and-flush takes at most 4096 bytes"
        if self.stub.close_request_body:
            raise Err(StreamClosed())
        self.sink.extend(contents)


class OutgoingBody(Resource):
    def __init__(self, stub: HttpStub, name: str) -> None:
        super().__init__(stub, name)
        self.data = bytearray()
        self.taken = False
        self.finished = False

    def write(self) -> OutputStream:
        if self.taken:
            raise Err(None)
        self.taken = True
        return OutputStream(self.stub, self, self.data)


class InputStream(Resource):
    def __init__(self, stub: HttpStub, parent: Resource, data: bytes) -> None:
        super().__init__(stub, "input-stream", parent)
        self.data = data

    def blocking_read(self, length: int) -> bytes:
        if not self.data:
            raise Err(StreamClosed())
        chunk, self.data = self.data[:length], self.data[length:]
        return chunk


class IncomingBody(Resource):
    def __init__(self, stub: HttpStub, data: bytes, parent: Resource | None = None) -> None:
        super().__init__(stub, "incoming-body", parent)
        self.data = data
        self.taken = False

    def stream(self) -> InputStream:
        if self.taken:
            raise Err(None)
        self.taken = True
        return InputStream(self.stub, self, self.data)


class Pollable(Resource):
    def __init__(self, stub: HttpStub, parent: Resource) -> None:
        super().__init__(stub, "pollable", parent)

    def block(self) -> None:
        self.stub.log.append("block")


class HttpStub:
    """The generated modules, and a scripted peer.

    Attributes:
        response: what the peer answers: (status, headers, body), or an `ErrorCode_*` value.
        refuse_at_handle: an `ErrorCode_*` value `outgoing-handler.handle` raises at once.
        sent: the request the SDK sent (method, scheme, authority, path, headers, body).
        log: resource drops and other events, in order.
    """

    def __init__(self) -> None:
        self.response: Any = (200, [("content-type", b"text/plain")], b"ok")
        self.refuse_at_handle: Any = None
        self.close_request_body = False
        self.pending_polls = 1
        self.sent: dict[str, Any] = {}
        self.options: dict[str, int | None] = {}
        self.log: list[str] = []
        self.types = self._types_module()

    # The modules --------------------------------------------------------------------------

    def modules(self) -> dict[str, Any]:
        return {
            "wit_world.imports.wasi_http_types": self.types,
            "wit_world.imports.outgoing_handler": _module(
                "wit_world.imports.outgoing_handler", handle=self.handle
            ),
            "wit_world.imports.streams": _module(
                "wit_world.imports.streams",
                StreamError_Closed=StreamClosed,
                StreamError_LastOperationFailed=StreamFailed,
            ),
            "wit_world.imports.poll": _module("wit_world.imports.poll"),
            "wit_world.imports.error": _module("wit_world.imports.error"),
        }

    def _types_module(self) -> Any:
        stub = self

        class StubFields(Fields):
            def __init__(self) -> None:
                super().__init__(stub, [])

            @classmethod
            def from_list(cls, entries: list[tuple[str, bytes]]) -> Fields:
                for name, value in entries:
                    assert isinstance(value, bytes)
                    if name.lower() in ("connection", "host", "transfer-encoding"):
                        raise Err(HeaderForbidden())
                return Fields(stub, entries)

        class OutgoingRequest(Resource):
            def __init__(self, headers: Fields) -> None:
                super().__init__(stub, "outgoing-request")
                self.headers_ = headers
                self.method: Any = None
                self.scheme: Any = None
                self.authority: str | None = None
                self.path: str | None = None
                self.body_: OutgoingBody | None = None

            def set_method(self, method: Any) -> None:
                self.method = method

            def set_scheme(self, scheme: Any) -> None:
                self.scheme = scheme

            def set_authority(self, authority: str | None) -> None:
                if authority is not None and " " in authority:
                    raise Err(None)
                self.authority = authority

            def set_path_with_query(self, path: str | None) -> None:
                self.path = path

            def body(self) -> OutgoingBody:
                assert self.body_ is None
                self.body_ = OutgoingBody(stub, "request-body")
                return self.body_

        class RequestOptions(Resource):
            def __init__(self) -> None:
                super().__init__(stub, "request-options")

            def set_connect_timeout(self, duration: int | None) -> None:
                stub.options["connect"] = duration

            def set_first_byte_timeout(self, duration: int | None) -> None:
                stub.options["first-byte"] = duration

            def set_between_bytes_timeout(self, duration: int | None) -> None:
                raise Err(None)  # a host that does not support this one

        class IncomingResponse(Resource):
            def __init__(self, status: int, headers: list[tuple[str, bytes]], body: bytes) -> None:
                super().__init__(stub, "incoming-response")
                self.status_, self.headers_, self.body_ = status, headers, body
                self.consumed = False

            def status(self) -> int:
                return self.status_

            def headers(self) -> Fields:
                return Fields(stub, self.headers_, parent=self)

            def consume(self) -> IncomingBody:
                if self.consumed:
                    raise Err(None)
                self.consumed = True
                return IncomingBody(stub, self.body_)

        class FutureIncomingResponse(Resource):
            def __init__(self, request: OutgoingRequest) -> None:
                super().__init__(stub, "future-incoming-response")
                self.request = request
                self.taken = False

            def subscribe(self) -> Pollable:
                return Pollable(stub, self)

            def get(self) -> Any:
                if stub.pending_polls > 0:
                    stub.pending_polls -= 1
                    return None
                if self.taken:
                    return Err(None)
                self.taken = True
                body = self.request.body_
                stub.sent = {
                    "method": self.request.method,
                    "scheme": type(self.request.scheme).__name__,
                    "authority": self.request.authority,
                    "path": self.request.path,
                    "headers": self.request.headers_.entries(),
                    "body": bytes(body.data) if body is not None else b"",
                    "body finished": body.finished if body is not None else None,
                }
                if isinstance(stub.response, tuple):
                    return Ok(Ok(IncomingResponse(*stub.response)))
                return Ok(Err(stub.response))

        class IncomingRequest(Resource):
            def __init__(
                self, method: Any, path: str | None, headers: list[tuple[str, bytes]], body: bytes
            ):
                super().__init__(stub, "incoming-request")
                self.method_, self.path_, self.headers_, self.body_ = method, path, headers, body

            def method(self) -> Any:
                return self.method_

            def path_with_query(self) -> str | None:
                return self.path_

            def headers(self) -> Fields:
                return Fields(stub, self.headers_, parent=self)

            def consume(self) -> IncomingBody:
                return IncomingBody(stub, self.body_, parent=self)

        class OutgoingResponse(Resource):
            def __init__(self, headers: Fields) -> None:
                super().__init__(stub, "outgoing-response")
                self.headers_ = headers
                self.status = 200
                self.body_: OutgoingBody | None = None

            def set_status_code(self, status: int) -> None:
                if not 100 <= status <= 999:
                    raise Err(None)
                self.status = status

            def body(self) -> OutgoingBody:
                self.body_ = OutgoingBody(stub, "response-body")
                return self.body_

        class ResponseOutparam(Resource):
            @classmethod
            def set(cls, param: Any, response: Any) -> None:
                assert isinstance(response, Ok), response
                stub.log.append("response set")
                param.response = response.value

        class StubIncomingBody:
            @staticmethod
            def finish(body: IncomingBody) -> Resource:
                alive = [c.name for c in body.children if not c.dropped]
                assert not alive, f"incoming-body finished while {alive} alive"
                body.__exit__()
                return Resource(stub, "future-trailers")

        class StubOutgoingBody:
            @staticmethod
            def finish(body: OutgoingBody, trailers: Any) -> None:
                alive = [c.name for c in body.children if not c.dropped]
                assert not alive, f"outgoing-body finished while {alive} alive"
                body.finished = True
                body.__exit__()

        members: dict[str, Any] = {
            "Fields": StubFields,
            "OutgoingRequest": OutgoingRequest,
            "RequestOptions": RequestOptions,
            "IncomingResponse": IncomingResponse,
            "FutureIncomingResponse": FutureIncomingResponse,
            "IncomingRequest": IncomingRequest,
            "OutgoingResponse": OutgoingResponse,
            "ResponseOutparam": ResponseOutparam,
            "IncomingBody": StubIncomingBody,
            "OutgoingBody": StubOutgoingBody,
            "Scheme_Http": _variant("Scheme", "Http", payload=False),
            "Scheme_Https": _variant("Scheme", "Https", payload=False),
            "Method_Other": _variant("Method", "Other"),
            "ErrorCode_InternalError": InternalErrorCode,
            "http_error_code": lambda error: None,
        }
        for method in METHODS:
            members[f"Method_{method}"] = _variant("Method", method, payload=False)
        for code in ERROR_CODES:
            members[f"ErrorCode_{code}"] = _variant("ErrorCode", code, payload=False)
        return _module("wit_world.imports.wasi_http_types", **members)

    # outgoing-handler.handle ----------------------------------------------------------------

    def handle(self, request: Any, options: Any) -> Any:
        self.log.append("handle")
        if options is not None:
            options.__exit__()
        if self.refuse_at_handle is not None:
            raise Err(self.refuse_at_handle)
        return self.types.FutureIncomingResponse(request)


class ResponseOut:
    """A `response-outparam` the server test reads back."""

    response: Any = None

    def __exit__(self, *exc: object) -> None:
        pass
