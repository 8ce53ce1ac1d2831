"""Binary results: bytes a task returns with their media type, kept in Offload's blob store."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["BINARY_OUTPUT", "Binary"]

# `type/subtype` with optional parameters, no line break: the same rule as
# @offload/contract's isMediaType, so a type never smuggles a second header.
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]"
_MEDIA_TYPE = re.compile(
    rf"^[A-Za-z0-9]{_TOKEN}{{0,126}}/[A-Za-z0-9]{_TOKEN}{{0,126}}"
    rf'(\s*;\s*{_TOKEN}+=("[^"\r\n]*"|{_TOKEN}+))*$'
)

#: The `output` of a task that returns `Binary`: the schema of what its jobs'
#: `result` shows, `{"contentType", "size", "url"}` (GET `url` for the bytes).
BINARY_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "contentType": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "url": {"type": "string"},
    },
    "required": ["contentType", "size", "url"],
    "additionalProperties": False,
    "description": "The result of a task that returned bytes: GET `url` (relative to the API) answers them",
}


@dataclass(frozen=True)
class Binary:
    """Bytes and their media type: what a task with `output=BINARY_OUTPUT` returns,

        return Binary(png_bytes, "image/png")

    and what `Client.result` gives back for such a job.
    """

    data: bytes
    content_type: str

    def __post_init__(self) -> None:
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise TypeError(f"Binary data must be bytes, not {type(self.data).__name__}")
        # bytes stay as they are; a bytearray or memoryview is copied once, so the result cannot change.
        object.__setattr__(self, "data", bytes(self.data))
        if not isinstance(self.content_type, str) or len(self.content_type) > 255 or not _MEDIA_TYPE.match(self.content_type):
            raise ValueError(f'"{self.content_type}" is not a media type such as image/png')
