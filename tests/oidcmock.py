# SPDX-License-Identifier: GPL-3.0-or-later
"""oidc-provider-mock on 127.0.0.1 in its own process, with what clients sent recorded.

`python -m tests.oidcmock` prints its port, then serves the provider plus two test
endpoints: `GET /_test/recorded` (each authorize query and token request, as JSON) and
`PUT /_test/failing/<status>` (answer everything with that status; 0 heals it). Its own
process: authlib warns of its coming changes, which the tests' warnings-are-errors
filter would turn into failures inside the provider.
"""

import io
import json
import sys
import urllib.parse
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import werkzeug.serving

StartResponse = Callable[..., object]


def main() -> None:
    warnings.simplefilter("ignore")
    import oidc_provider_mock  # noqa: PLC0415 -- after the filter: its imports warn

    flask_app = oidc_provider_mock.app(require_nonce=True)
    recorded: dict[str, list[Any]] = {"authorize": [], "token": [], "token_auth": []}
    failing = [0]

    def answer(start: StartResponse, status: int, body: bytes) -> Iterable[bytes]:
        start(f"{status} Test", [("Content-Type", "application/json")])
        return [body]

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_test/recorded":
            return answer(start, 200, json.dumps(recorded).encode())
        if path.startswith("/_test/failing/"):
            failing[0] = int(path.rsplit("/", 1)[1])
            return answer(start, 204, b"")
        if failing[0]:
            return answer(start, failing[0], b'{"error": "broken"}')
        if path == "/oauth2/authorize":
            recorded["authorize"].append(dict(urllib.parse.parse_qsl(environ["QUERY_STRING"])))
        if path == "/oauth2/token":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            recorded["token"].append(dict(urllib.parse.parse_qsl(body.decode())))
            recorded["token_auth"].append(environ.get("HTTP_AUTHORIZATION", ""))
        return flask_app(environ, start)

    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    sys.stdout.close()  # the port is all the parent reads; the rest goes to stderr
    server.serve_forever(0.1)


if __name__ == "__main__":
    main()
