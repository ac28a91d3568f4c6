# SPDX-License-Identifier: GPL-3.0-or-later
"""Request parameters to typed Structs, with PiKVM's error names and messages.

Query strings arrive as text, so each field is first normalised by its declared type
(PiKVM's `yes/no/on/off` booleans, lowercase choices), then msgspec converts and
checks ranges in one pass. Unknown parameters are ignored, as PiKVM does.
"""

import enum
import functools
import re
from collections.abc import Mapping
from typing import TypeVar, overload

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from kvmd.errors import ValidatorError

T = TypeVar("T", bound=msgspec.Struct)
D = TypeVar("D")

# A scalar longer than this is refused before parsing: no legitimate value comes close.
MAX_RAW = 1024
# The text of a multipart form, as aiohttp's own limit for a body it reads whole.
FORM_MAX = 1024 * 1024
# What a broken body raises while it is parsed. HttpProcessingError: a multipart part's
# headers are parsed only then, so a NUL in them surfaces as aiohttp's InvalidHeader;
# LookupError: a part names a charset Python does not know.
_BROKEN_FORM = (ValueError, UnicodeDecodeError, AssertionError, LookupError, HttpProcessingError)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class _Kind(enum.Enum):
    BOOL = "bool"
    CHOICE = "choice"
    OTHER = "other"


@functools.cache
def _kinds(cls: type[msgspec.Struct]) -> dict[str, _Kind]:
    info = msgspec.inspect.type_info(cls)
    if not isinstance(info, msgspec.inspect.StructType):
        raise TypeError(f"{cls} is not a Struct")
    return {field.encode_name: _kind_of(field.type) for field in info.fields}


def _kind_of(tp: msgspec.inspect.Type) -> _Kind:
    if isinstance(tp, msgspec.inspect.UnionType):
        kinds = {_kind_of(t) for t in tp.types if not isinstance(t, msgspec.inspect.NoneType)}
        return kinds.pop() if len(kinds) == 1 else _Kind.OTHER
    if isinstance(tp, msgspec.inspect.BoolType):
        return _Kind.BOOL
    if isinstance(tp, msgspec.inspect.EnumType | msgspec.inspect.LiteralType):
        return _Kind.CHOICE
    return _Kind.OTHER


def bool_word(raw: str) -> bool | None:
    """PiKVM's boolean words (1/0, true/false, yes/no, on/off; any case), else None."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def parse_bool(raw: str, name: str) -> bool:
    value = bool_word(raw)
    if value is None:
        raise ValidatorError(f"The argument {_show(raw)} is not a valid {name}")
    return value


def parse_params(params: Mapping[str, str], cls: type[T]) -> T:
    """Convert query or form parameters into `cls`, or raise `ValidatorError`."""
    data: dict[str, object] = {}
    for name, kind in _kinds(cls).items():
        raw = params.get(name)
        if raw is None:
            continue
        if len(raw) > MAX_RAW:
            raise ValidatorError(f"The argument {name!r} is too long")
        if kind is _Kind.BOOL:
            data[name] = parse_bool(raw, name)
        elif kind is _Kind.CHOICE:
            data[name] = raw.strip().lower()
        else:
            data[name] = raw.strip()
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, data) from None


_FIELD_AT = re.compile(r"`\$\.([A-Za-z0-9_]+)")
_MISSING = re.compile(r"missing required field `([A-Za-z0-9_]+)`")


def _explain(exc: msgspec.ValidationError, data: Mapping[str, object]) -> ValidatorError:
    text = str(exc)
    missing = _MISSING.search(text)
    if missing:
        return ValidatorError(f"None argument is not a valid {missing.group(1)}")
    at = _FIELD_AT.search(text)
    name = at.group(1) if at else "argument"
    reason = text.split(" - at ", 1)[0]
    return ValidatorError(f"The argument {_show(data.get(name))} is not a valid {name}: {reason}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "...'"


async def read_form(request: web.Request) -> dict[str, str]:
    """The text fields of an urlencoded or multipart body; a broken body is a 400."""
    try:
        if request.content_type == "multipart/form-data":
            return await _read_multipart(request)
        form = await request.post()
    except _BROKEN_FORM as exc:
        raise ValidatorError(f"Invalid form data: {_reason(exc)}") from None
    return {name: value for (name, value) in form.items() if isinstance(value, str)}


async def _read_multipart(request: web.Request) -> dict[str, str]:
    """Text parts only, within FORM_MAX bytes; file parts are skipped as they stream by.

    aiohttp's `post()` spools a file part to a temporary file that it never closes when a
    later part fails; kvmd's forms take no files (uploads are raw bodies), so none is kept.
    """
    fields: dict[str, str] = {}
    left = FORM_MAX
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.filename is not None or not part.name:
            await part.release()
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            left -= len(chunk)
            if left < 0:
                raise ValidatorError("Invalid form data: too large")
            data += chunk
        fields[part.name] = data.decode(part.get_charset("utf-8"))
    return fields


async def read_params(request: web.Request, cls: type[T]) -> T:
    """Query parameters and the body (urlencoded, multipart or a JSON object) into `cls`.

    The admin endpoints take lists (roles, permissions, networks): a JSON body gives them
    as arrays, a form or a query as comma-separated text (see `as_list`).
    """
    if request.content_type != "application/json":
        return parse_params({**request.query, **await read_form(request)}, cls)
    try:
        body = decode_json(await request.read())
    except msgspec.DecodeError as exc:
        raise ValidatorError(f"Invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ValidatorError("The JSON body must be an object")
    data = {**request.query, **body}
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, data) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, HttpProcessingError):
        return exc.message.splitlines()[0][:128] if exc.message else type(exc).__name__
    return str(exc)[:128]


@overload
def decode_json(data: bytes | str) -> object: ...
@overload
def decode_json(data: bytes | str, cls: type[D]) -> D: ...
def decode_json(data: bytes | str, cls: object = object) -> object:
    """Msgspec's JSON decoding, where nesting too deep for it is just another DecodeError.

    msgspec follows nesting on the C stack and raises RecursionError past Python's limit,
    which no caller expects from bad input.
    """
    try:
        return msgspec.json.decode(data, type=cls)
    except RecursionError:
        raise msgspec.DecodeError("JSON is nested too deeply") from None


def as_list(value: str | list[str] | None) -> list[str] | None:
    """`a,b` or `["a", "b"]` as a list of non-empty stripped items; None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items if item.strip()]
