# SPDX-License-Identifier: GPL-3.0-or-later
from typing import Annotated

import msgspec
import pytest

from kvmd.errors import ValidatorError
from kvmd.plugins.atx.base import PowerAction
from kvmd.server.params import parse_bool, parse_params


class Query(msgspec.Struct, frozen=True, kw_only=True):
    action: PowerAction
    wait: bool = False
    delay: Annotated[float, msgspec.Meta(ge=0, le=5)] = 0.0
    name: str = ""


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("On", True),
        ("0", False),
        ("off", False),
        ("No", False),
    ],
)
def test_booleans(raw, value):
    assert parse_bool(raw, "wait") is value
    assert parse_params({"action": "on", "wait": raw}, Query).wait is value


def test_choices_are_lowercased_and_unknown_params_ignored():
    query = parse_params({"action": " OFF_HARD ", "junk": "x", "delay": "2.5"}, Query)
    assert query == Query(action=PowerAction.OFF_HARD, delay=2.5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "None argument is not a valid action"),
        (
            {"action": "explode"},
            "The argument 'explode' is not a valid action: Invalid enum value 'explode'",
        ),
        ({"action": "on", "wait": "maybe"}, "The argument 'maybe' is not a valid wait"),
        (
            {"action": "on", "delay": "9"},
            "The argument '9' is not a valid delay: Expected `float` <= 5.0",
        ),
        (
            {"action": "on", "delay": "nan?"},
            "The argument 'nan?' is not a valid delay: Expected `float`, got `str`",
        ),
        ({"action": "on", "name": "x" * 5000}, "The argument 'name' is too long"),
    ],
)
def test_errors(params, message):
    with pytest.raises(ValidatorError) as info:
        parse_params(params, Query)
    assert info.value.msg == message
