# SPDX-License-Identifier: GPL-3.0-or-later
"""The error family. Each class carries the HTTP status the API answers with.

The class name is what clients see in `result.error`, so names follow PiKVM's
(`ValidatorError`, `AtxDisabledError`, ...) and must not be renamed.
"""

import math
from typing import ClassVar


class KvmdError(Exception):
    http_status: ClassVar[int] = 500
    default_msg: ClassVar[str] = "Internal error"

    def __init__(self, msg: str = "") -> None:
        super().__init__(msg or self.default_msg)

    @property
    def msg(self) -> str:
        return str(self.args[0])


class BadRequestError(KvmdError):
    http_status = 400
    default_msg = "Bad request"


class ValidatorError(BadRequestError):
    default_msg = "Invalid argument"


class UnsupportedError(BadRequestError):
    default_msg = "Operation is not supported"


class OperationError(BadRequestError):
    """An operation that is not possible now (disabled subsystem, wrong state)."""


class LogReaderDisabledError(OperationError):
    default_msg = "LogReader is disabled"


class UnauthorizedError(KvmdError):
    http_status = 401
    default_msg = "Unauthorized"


class ForbiddenError(KvmdError):
    http_status = 403
    default_msg = "Forbidden"


class PermissionDeniedError(ForbiddenError):
    pass


class ReadOnlyError(ForbiddenError):
    default_msg = "This credential is read-only"


class PasswordChangeRequiredError(ForbiddenError):
    default_msg = "The password must be changed first"


class NotFoundError(KvmdError):
    http_status = 404
    default_msg = "Not found"


class BusyError(KvmdError):
    http_status = 409
    default_msg = "Another operation is in progress"


class TooManyRequestsError(KvmdError):
    """Authentication is throttled; the client may retry after `retry_after` seconds."""

    http_status = 429
    default_msg = "Too many failed attempts"

    def __init__(self, retry_after: float, msg: str = "") -> None:
        super().__init__(msg)
        self.retry_after = max(1, math.ceil(retry_after))


class ConflictError(KvmdError):
    """The request contradicts the current state (an existing name, the last admin)."""

    http_status = 409
    default_msg = "Conflict"


class AlreadyExistsError(ConflictError):
    default_msg = "Already exists"


class LastAdminError(ConflictError):
    default_msg = "The last enabled admin can't lose admin rights"


class InUseError(ConflictError):
    default_msg = "Still in use"


class UnavailableError(KvmdError):
    http_status = 503
    default_msg = "Service Unavailable"


class DeviceUnavailableError(UnavailableError):
    """The gadget is not bound, the host is unplugged or the streamer is down."""


class HardwareError(KvmdError):
    """A device failed in a way the user cannot fix by changing the request."""

    default_msg = "Hardware error"


class ConfigError(Exception):
    """Raised only at start-up; the daemon exits with EX_CONFIG (78)."""
