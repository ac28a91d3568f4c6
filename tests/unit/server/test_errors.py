# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place exceptions become statuses: what a client's broken body turns into."""

import json
import logging

import pytest
from aiohttp import web
from aiohttp.http_exceptions import ContentLengthError, TransferEncodingError
from aiohttp.test_utils import make_mocked_request

from kvmd.errors import BusyError
from kvmd.server.errors import errors_middleware


async def answer(exc: BaseException) -> web.Response:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise exc

    response = await errors_middleware(make_mocked_request("POST", "/api/x"), handler)
    assert isinstance(response, web.Response)
    return response


def envelope(response: web.Response) -> dict[str, object]:
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


@pytest.mark.parametrize(
    "exc",
    [
        TransferEncodingError("Not enough data for satisfy transfer length header."),
        ContentLengthError("x"),
    ],
)
async def test_a_body_that_breaks_http_is_a_400(exc, caplog):
    response = await answer(exc)
    assert response.status == 400
    assert envelope(response) == {
        "ok": False,
        "result": {"error": "HttpError", "error_msg": f"Bad request body: {type(exc).__name__}"},
    }
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_client_gone_mid_body_is_one_info_line(caplog):
    caplog.set_level(logging.INFO)
    response = await answer(ConnectionResetError("Connection lost"))
    assert response.status == 400
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("INFO", "POST /api/x: the client went away", None)
    ]


async def test_our_errors_keep_their_status_and_a_bug_is_a_logged_500(caplog):
    assert (await answer(BusyError())).status == 409
    response = await answer(KeyError("x"))
    assert response.status == 500
    assert envelope(response)["result"] == {
        "error": "InternalError",
        "error_msg": "Internal server error",
    }
    assert [r.exc_info is not None for r in caplog.records] == [True]
