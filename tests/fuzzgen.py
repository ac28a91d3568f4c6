# SPDX-License-Identifier: GPL-3.0-or-later
"""Random requests and websocket frames, for the fuzz test and the fuzz bench.

Requests are raw bytes, so they carry what HTTP clients refuse to send: non-ASCII and
NUL in headers, oversize lines, broken request lines. Routes and parameter names come
from the app's own route tables, so a new route is fuzzed without editing this file.
Everything is drawn from one `random.Random`: a seed replays a run.
"""

import base64
import dataclasses
import functools
import gzip
import random
import string
import sys
import urllib.parse
from collections.abc import Callable

import msgspec
from aiohttp import web

from kvmd.auth.principal import Access
from kvmd.server import webui
from kvmd.server.auth import access_of
from kvmd.server.web import ROUTES

Headers = list[tuple[bytes, bytes]]

ADMIN_XHDR: Headers = [(b"X-KVMD-User", b"admin"), (b"X-KVMD-Passwd", b"admin")]
ADMIN_BASIC: Headers = [(b"Authorization", b"Basic " + base64.b64encode(b"admin:admin"))]
# aiohttp's limit for a request line or a header field is 8190 bytes.
OVERSIZE = 8191
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"]
# Never "admin" among the values: fuzzing must not remove or demote the user it runs as.
VALUES = [
    *["", "0", "1", "-1", "yes", "no", "off", "true", "null", "nan", "inf", "-inf", "1e400"],
    *["9" * 400, "-" + "9" * 30, "0x10", " 1 ", "1.5", "a,b", ",,", "x" * 1100, "é", "日本語"],
    *["\x00", "a\x00b", "../..", "KeyA", "ControlLeft,AltLeft,Delete", "left", "power", "reset"],
    *["on", "en-us", "de", "viewer", "operator", "[]", "{}", '{"a":1}', "127.0.0.1/8", "all"],
    *["state,video", "image.iso", "http://127.0.0.1:1/x.iso", "f" * 64, "_key.abcdef", "\u202e"],
]
# Route arguments ({sid}, {name}); the console's real file names are added.
SEGMENTS = ["0", "1", "System", "x" * 300, "%00", "%ff", "%2e%2e", "%C3%A9", "..", "a b"]
HEADER_NAMES = [
    *["User-Agent", "Referer", "Accept", "Accept-Encoding", "Accept-Language", "Origin"],
    *["X-Real-IP", "X-Forwarded-For", "Cookie", "Range", "If-Modified-Since", "If-None-Match"],
    *["Cache-Control", "Content-Encoding", "Expect", "Connection", "Sec-WebSocket-Key", "X-Y"],
]
HEADER_VALUES = [
    *[b"", b"gzip", b"deflate", b"br", b"zstd", b"bytes=0-10", b"bytes=-5", b"bytes=99999999-"],
    *[b"bytes=abc", b"100-continue", b"close", b"keep-alive", b"Upgrade", b"*", b"::1"],
    *[b"256.1.1.1", b"Sun, 06 Nov 1994 08:49:37 GMT", b'W/"x"', b"auth_token=" + b"0" * 64],
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b0undary",
    "multipart/form-data",
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "application/octet-stream",
    "x/\u00e9",
]
PART_HEADERS = [
    b"Content-Type: text/plain; charset=\xe9",
    b"X-Nul: a\x00b",
    b"X-\xe9\x00: \xff",
    b"no colon",
    b"Content-Transfer-Encoding: base64",
    b"Content-Disposition: form-data; name=\x00",
    b"Content-Disposition: attachment",
    b"Content-Length: 99999",
]
BAD_JSON = [b"", b"{", b"{'a': 1}", b"[1,]", b"NaN", b'{"a":"\xff"}', b"\xef\xbb\xbf{}", b"\x00"]
HUGE_NUMBERS = ["1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 5000, "1.5e-99999", "0.0e1"]
# Past the depth any parser needs, and short of the websocket's 64 KiB message limit.
DEPTHS = [100, 1000, 3000, 10_000, 30_000]
EVENT_TYPES = ["key", "mouse_button", "mouse_move", "mouse_relative", "mouse_wheel", "ping"]
EVENT_KEYS = ["key", "state", "finish", "button", "to", "x", "y", "delta", "squash"]
_CONTROLS = frozenset(range(32)) - {9}
_WIDE = "".join(map(chr, range(0x20, 0x3000, 7)))


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 -- a fuzz run must replay from its seed


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # as registered: /api/redfish/v1/Systems/{sid}
    public: bool


def app_routes() -> list[Route]:
    """Every route `make_app` registers: each API route with and without /api, the UI."""
    routes = []
    for table in ROUTES:
        for prefix in ("/api", ""):
            routes += [_route(r, prefix) for r in table if isinstance(r, web.RouteDef)]
    routes += [_route(r, "") for r in webui.routes if isinstance(r, web.RouteDef)]
    return routes


def _route(route: web.RouteDef, prefix: str) -> Route:
    return Route(route.method, prefix + route.path, access_of(route.handler) is Access.PUBLIC)


def param_names() -> list[str]:
    """Field names of the Structs the route modules parse queries and bodies into."""
    names: set[str] = set()
    for table in (*ROUTES, webui.routes):
        modules = {sys.modules[r.handler.__module__] for r in table if isinstance(r, web.RouteDef)}
        for module in modules:
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, msgspec.Struct):
                    names.update(f.encode_name for f in msgspec.structs.fields(value))
    return sorted(names)


class Atoms:
    """Names, values and JSON that requests and frames are built from."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names = param_names()

    def name(self) -> str:
        return self.rng.choice(self.names) if self.rng.random() < 0.85 else self.value()

    def value(self) -> str:
        r = self.rng
        return r.choice(VALUES) if r.random() < 0.7 else self.text(r.choice([5, 40, 300]))

    def word(self) -> str:
        return "".join(self.rng.choices(string.ascii_lowercase + "_-.", k=self.rng.randint(1, 12)))

    def text(self, size: int) -> str:
        """Up to `size` characters, with controls, RTL marks, emoji and lone surrogates."""
        r = self.rng
        alphabet = r.choice([string.printable, "aé日\x00\u202e\U0001f600\ud800 ", _WIDE])
        return "".join(r.choices(alphabet, k=r.randint(0, size)))

    def deep(self) -> str:
        depth = self.rng.choice(DEPTHS)
        if self.rng.random() < 0.5:
            return "[" * depth + "]" * depth
        depth = min(depth, 10_000)  # six bytes a level
        return '{"a":' * depth + "1" + "}" * depth

    def json(self, depth: int) -> str:
        """A JSON value as text: msgspec cannot encode 1e400 or a 5000-digit integer."""
        r = self.rng
        roll = r.random()
        if depth > 0 and roll < 0.15:
            return "[" + ",".join(self.json(depth - 1) for _ in range(r.randint(0, 4))) + "]"
        if depth > 0 and roll < 0.25:
            return self.json_object(depth - 1, self.name)
        if roll < 0.4:
            return r.choice(HUGE_NUMBERS)
        if roll < 0.6:
            return r.choice(["true", "false", "null", "0", "-1", "1.5", str(r.getrandbits(70))])
        return _quote(self.value())

    def json_object(self, depth: int, key: Callable[[], str]) -> str:
        fields = [f"{_quote(key())}:{self.json(depth)}" for _ in range(self.rng.randint(0, 5))]
        return "{" + ",".join(fields) + "}"


def _quote(text: str) -> str:
    return msgspec.json.encode(text.encode("utf-8", "replace").decode()).decode()


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)


def _utf8(text: str) -> bytes:
    """UTF-8, except that a lone surrogate makes it invalid, as a hostile client may send."""
    return text.encode("utf-8", "surrogatepass")


def _no_crlf(value: bytes) -> bytes:
    return value.replace(b"\r", b"").replace(b"\n", b"")


@dataclasses.dataclass(frozen=True, slots=True)
class FuzzRequest:
    label: str  # "POST /api/hid/print", "unknown" or "malformed"
    method: str
    raw: bytes
    admin: bool  # sent with admin's credentials
    public: bool  # the route answers without credentials
    wellformed: bool  # HTTP that aiohttp's parser takes: the server must answer it
    # False after a broken request or an Upgrade: aiohttp may read what follows as
    # HTTP/0.9 or as the upgraded protocol, and the next request would wait for nothing.
    reusable: bool = False

    def show(self, limit: int = 600) -> str:
        raw = self.raw if len(self.raw) <= limit else self.raw[:limit] + b"..."
        return f"{raw!r} ({len(self.raw)} bytes)"


class RequestGen:
    """Draws requests: mostly admin's, mostly on known routes, with hostile details."""

    def __init__(self, rng: random.Random, token: str = "") -> None:
        self._rng = rng
        self._atoms = Atoms(rng)
        self._token = token  # a session of admin's, for some requests to carry
        self.routes = app_routes()
        self._ui_files = sorted(p.name for p in (webui.WEB_ROOT / "ui").iterdir())

    def next(self) -> FuzzRequest:
        r = self._rng
        roll = r.random()
        if roll < 0.03:
            raw = self._malformed()
            return FuzzRequest("malformed", "", raw, admin=False, public=True, wellformed=False)
        if roll < 0.08:
            # May still land on a route ("/api/../" is "/"): no claim on its credentials.
            route = Route(r.choice(METHODS), self._unknown_path(), public=True)
            label = "unknown"
        else:
            route = r.choice(self.routes)
            label = f"{route.method} {route.path}"
        method = route.method if r.random() < 0.75 else r.choice(METHODS)
        # A print with a key delay types for as long as it was asked (1 s a character): no
        # answer in the client's time is right there, and it holds the typing for the next.
        slow = ("delay", "slow") if route.path.endswith("/hid/print") else ()
        target = self._fill(route.path) + self._query(skip=slow)
        (creds, admin) = self._credentials()
        extra = self._headers()
        # aiohttp's parser refuses NUL, most controls and oversize fields with a 400.
        wellformed = all(len(v) < OVERSIZE and not _CONTROLS & set(v) for (_, v) in creds + extra)
        (content_type, body) = self._body() if r.random() < 0.7 else (None, b"")
        head = [(b"Host", b"127.0.0.1"), *creds, *extra]
        if content_type is not None:
            head.append((b"Content-Type", content_type.encode()))
        if body or method in ("POST", "PUT", "PATCH") or r.random() < 0.1:
            (framing, body) = self._framing(body)
            head += framing
        raw = f"{method} {target} HTTP/1.1\r\n".encode()
        raw += b"".join(name + b": " + value + b"\r\n" for (name, value) in head) + b"\r\n"
        return FuzzRequest(
            label,
            method,
            raw + body,
            admin=admin,
            public=route.public,
            wellformed=wellformed,
            reusable=all(name != b"Upgrade" for (name, _) in extra),
        )

    def _framing(self, body: bytes) -> tuple[Headers, bytes]:
        """Length, chunks or gzip, all valid: the content is where the trouble is."""
        r = self._rng
        roll = r.random()
        if roll < 0.08:
            cuts = sorted(r.sample(range(len(body) + 1), min(len(body) + 1, r.randint(0, 5))))
            parts = [
                body[a:b] for (a, b) in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a
            ]
            chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
            return ([(b"Transfer-Encoding", b"chunked")], chunked)
        if roll < 0.13:
            # Now and then a bomb: 64 KiB that inflate to 64 MiB, past every body limit.
            body = _bomb() if r.random() < 0.1 else gzip.compress(body)
            return ([(b"Content-Encoding", b"gzip"), *self._length(body)], body)
        if roll < 0.16:  # a body that is not what its encoding says
            encoding = r.choice([b"gzip", b"deflate", b"br", b"zstd", b"identity, gzip"])
            return ([(b"Content-Encoding", encoding), *self._length(body)], body)
        return (self._length(body), body)

    def _length(self, body: bytes) -> Headers:
        return [(b"Content-Length", str(len(body)).encode())]

    def _fill(self, path: str) -> str:
        while "{" in path:
            (before, _, rest) = path.partition("{")
            segment = self._rng.choice([*SEGMENTS, *self._ui_files, self._atoms.word()])
            path = before + urllib.parse.quote(segment, safe="%") + rest.partition("}")[2]
        return path

    def _unknown_path(self) -> str:
        r = self._rng
        tail = r.choice([self._atoms.word(), "x" * r.randint(100, 4000), "%00", "a/b/c", ""])
        return r.choice(["/api/", "/", "/ui/", "/api/auth/", "//", "/api/../", "/%2e%2e/"]) + tail

    def _query(self, skip: tuple[str, ...] = ()) -> str:
        r = self._rng
        pairs = [(self._atoms.name(), self._atoms.value()) for _ in range(r.choice([0, 1, 2, 4]))]
        pairs = [(name, value) for (name, value) in pairs if name not in skip]
        if not pairs:
            return ""
        if r.random() < 0.9:
            return "?" + urllib.parse.urlencode(pairs, errors="surrogatepass")
        # Escapes no browser sends: invalid UTF-8, half escapes, NUL.
        junk = ["%ff%fe", "%zz", "%", "+%2", "%00", "%C3%28"]
        return "?" + "&".join(
            f"{urllib.parse.quote(n[:20], errors='surrogatepass')}={r.choice(junk)}"
            for n, _ in pairs
        )

    def _malformed(self) -> bytes:
        r = self._rng
        long = b"a" * r.randint(OVERSIZE, OVERSIZE + 2000)
        line = r.choice(
            [
                *[b"GET\r\n", b"GET /api/info\r\n", b"GET  /api/info  HTTP/1.1\r\n"],
                *[b"G\xc3\xa9T /api/info HTTP/1.1\r\n", b"GET /api/info HTTP/9.9\r\n"],
                *[b"GET /api/info HTTP/1.1x\r\n", b"GET /" + long + b" HTTP/1.1\r\n"],
                *[b"GET /api/\xe9\x00 HTTP/1.1\r\n", b"GET http://[::1 HTTP/1.1\r\n"],
                *[b"CONNECT /api/info HTTP/1.1\r\n", b"\x00\x01\x02\xff HTTP/1.1\r\n"],
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS client hello
            ]
        )
        header = r.choice(
            [
                *[b"Host: x\r\n", b"No colon here\r\n", b" folded: line\r\n", b"Host : x\r\n"],
                *[b"Content-Length: -1\r\n", b"Content-Length: 1\r\nContent-Length: 2\r\n"],
                *[b"Transfer-Encoding: gzip, chunked\r\n", b"X-A: " + long + b"\r\n"],
                b"".join(b"X-%d: y\r\n" % n for n in range(r.randint(90, 200))),
            ]
        )
        return line + header + b"X-KVMD-User: admin\r\nX-KVMD-Passwd: admin\r\n\r\n"

    def _credentials(self) -> tuple[Headers, bool]:
        r = self._rng
        roll = r.random()
        if roll < 0.45:
            return (ADMIN_XHDR, True)
        if roll < 0.75:
            return (ADMIN_BASIC, True)
        if roll < 0.8 and self._token:
            return ([(b"Cookie", b"auth_token=" + self._token.encode())], True)
        if roll < 0.85:
            return ([], False)
        value = self._header_value()
        wrong: list[Headers] = [
            [(b"X-KVMD-User", value), (b"X-KVMD-Passwd", self._header_value())],
            [(b"X-KVMD-User", b"admin"), (b"X-KVMD-Passwd", value)],
            [(b"Authorization", b"Basic " + value)],
            [(b"Authorization", b"Basic \xc3\xa9")],
            [(b"Authorization", b"Basic " + base64.b64encode(r.randbytes(r.randint(0, 40))))],
            [(b"Authorization", b"Bearer _key." + value + b".x")],
            [(b"Cookie", b"auth_token=" + value)],
            [(b"Cookie", b"auth_token=" + r.randbytes(32).hex().encode())],
        ]
        return (r.choice(wrong), False)

    def _headers(self) -> Headers:
        r = self._rng
        headers = []
        for _ in range(r.choice([0, 0, 1, 2, 4])):
            name = r.choice([*HEADER_NAMES, self._atoms.word()]).encode()
            headers.append((name, self._header_value()))
        if r.random() < 0.03:  # a websocket handshake: 101 on /api/ws, refused elsewhere
            key = base64.b64encode(r.randbytes(16))
            headers += [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")]
            headers += [(b"Sec-WebSocket-Version", b"13"), (b"Sec-WebSocket-Key", key)]
        return headers

    def _header_value(self) -> bytes:
        r = self._rng
        roll = r.random()
        if roll < 0.3:
            return r.choice(HEADER_VALUES)
        if roll < 0.5:
            return self._atoms.word().encode()
        if roll < 0.65:
            return bytes(r.randint(0x80, 0xFF) for _ in range(r.randint(1, 20)))  # latin-1
        if roll < 0.8:
            return _no_crlf(_utf8(self._atoms.text(20)))
        if roll < 0.9:
            return (
                b"a\x00b" if r.random() < 0.5 else bytes([r.choice(sorted(_CONTROLS - {10, 13}))])
            )
        return b"v" * r.randint(OVERSIZE, OVERSIZE + 4000)

    def _body(self) -> tuple[str | None, bytes]:
        r = self._rng
        content_type = r.choice([*CONTENT_TYPES, None])
        if content_type is None or content_type.startswith("application/o"):
            if r.random() < 0.02:  # past aiohttp's client_max_size: a 413, never a 500
                return (content_type, bytes(1024 * 1024 + 1))
            return (content_type, r.randbytes(r.choice([0, 10, 300, 5000])))
        if content_type.startswith("application/x-www"):
            return (content_type, self._query().lstrip("?").encode())
        if content_type.startswith("multipart"):
            return (content_type, self._multipart())
        if content_type.startswith("application/json"):
            return (content_type, self._json_body())
        return (content_type, _utf8(self._atoms.text(300)))

    def _multipart(self) -> bytes:
        r = self._rng
        out = b""
        for _ in range(r.randint(0, 4)):
            headers = [b'Content-Disposition: form-data; name="%s"' % _utf8(self._atoms.name())]
            if r.random() < 0.2:
                headers[0] += b'; filename="%s"' % self._atoms.word().encode()
            if r.random() < 0.3:
                headers.append(r.choice([*PART_HEADERS, b"X-Big: " + b"z" * OVERSIZE]))
            value = _utf8(self._atoms.value())
            if r.random() < 0.1:
                value = r.randbytes(r.randint(0, 100))
            out += b"--b0undary\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + value + b"\r\n"
        ends = [b"--b0undary--\r\n", b"--b0undary--", b"", b"--other--\r\n", b"--b0undary"]
        return out + r.choice(ends)

    def _json_body(self) -> bytes:
        r = self._rng
        roll = r.random()
        if roll < 0.15:
            return self._atoms.deep().encode()
        if roll < 0.25:
            return r.choice(BAD_JSON)
        if roll < 0.35:
            return self._atoms.json(3).encode()
        return self._atoms.json_object(2, self._atoms.name).encode()


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    kind: str  # "text" or "binary", or the control frames "ping" and "pong"
    data: str | bytes

    def show(self, limit: int = 300) -> str:
        text = repr(self.data)
        more = "..." if len(text) > limit else ""
        return f"{self.kind} {text[:limit]}{more} ({len(self.data)})"


class FrameGen:
    """Draws client messages: JSON events with wrong shapes, binary events, control frames."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._atoms = Atoms(rng)

    def next(self) -> Frame:
        r = self._rng
        roll = r.random()
        if roll < 0.55:
            return Frame("text", self._event())
        if roll < 0.6:
            where = r.choice(['{"event_type":"ping","event":%s}', '{"event":%s}', "%s"])
            return Frame("text", where % self._atoms.deep())
        if roll < 0.9:
            kind = r.choice([0, 1, 2, 3, 4, 5, 6, 255, r.randint(0, 255)])
            size = r.choice([0, 1, 2, 3, 4, 5, 8, 40, 2000])
            return Frame("binary", bytes([kind]) + r.randbytes(size))
        if roll < 0.95:
            return Frame("text", _utf8(self._atoms.text(200)).decode("utf-8", "replace"))
        if roll < 0.97:
            return Frame("binary", b"")
        return Frame(r.choice(["ping", "pong"]), r.randbytes(r.randint(0, 125)))

    def _event(self) -> str:
        r = self._rng
        atoms = self._atoms
        event = atoms.json_object(2, lambda: r.choice(EVENT_KEYS))
        if r.random() < 0.2:
            event = atoms.json(2)
        event_type = _quote(r.choice(EVENT_TYPES)) if r.random() < 0.9 else atoms.json(1)
        return f'{{"event_type":{event_type},"event":{event}}}'
