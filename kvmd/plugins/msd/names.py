# SPDX-License-Identifier: GPL-3.0-or-later
"""Image names: relative paths inside the storage that can never leave it.

A name is one or more `/`-separated parts, as PiKVM allows (`dir/file.iso`). Empty parts
are dropped, as PiKVM does, so a leading or doubled slash cannot make a path absolute.
Where PiKVM quietly rewrites a bad part (unprintable characters to `_`, over-long parts
cut), kvmd refuses it: the client learns the name its image really gets.
"""

from kvmd.errors import ValidatorError

MARKER_PREFIX = ".__"
MARKER_SUFFIX = ".incomplete"
# NAME_MAX (255 bytes on every Linux filesystem), less what the marker adds to a name.
MAX_PART_BYTES = 255 - len(MARKER_PREFIX) - len(MARKER_SUFFIX)
MAX_NAME_BYTES = 4096  # PATH_MAX


def image_name(raw: str, prefix: str = "", *, arg: str = "image") -> str:
    """The normalised name for `prefix/raw`, or a `ValidatorError` naming the argument."""
    parts = [*_parts(prefix, "prefix"), *_parts(raw, arg)]
    if not parts:
        raise ValidatorError(f"The argument {raw!r} is not a valid {arg}: it is empty")
    name = "/".join(parts)
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValidatorError(f"The argument {arg!r} is too long")
    return name


def _parts(raw: str, arg: str) -> list[str]:
    parts = [part for part in raw.strip().split("/") if part]
    for part in parts:
        problem = _problem(part)
        if problem:
            shown = raw if len(raw) <= 64 else raw[:61] + "..."
            raise ValidatorError(f"The argument {shown!r} is not a valid {arg}: {problem}")
    return parts


def _problem(part: str) -> str:
    if part in (".", ".."):
        return "it may not refer to a parent or the current directory"
    if part.startswith("."):
        return "a part may not start with a dot"
    if part == "lost+found":
        return "lost+found is reserved"
    if not part.isprintable():
        return "it has unprintable characters"
    # Printable text holds no lone surrogates, so it always encodes.
    if len(part.encode()) > MAX_PART_BYTES:
        return f"a part is longer than {MAX_PART_BYTES} bytes"
    return ""


def marker_name(filename: str) -> str:
    """The file that marks `filename` (in the same directory) as incomplete."""
    return f"{MARKER_PREFIX}{filename}{MARKER_SUFFIX}"
