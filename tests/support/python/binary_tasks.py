"""A Python task that returns bytes, for the binary-result tests (tests/e2e/binary-results.test.ts)."""

import hashlib

from offload import BINARY_OUTPUT, Binary, task


@task(
    name="py.bytes",
    input={
        "type": "object",
        "properties": {"size": {"type": "integer", "minimum": 0, "maximum": 64 * 1024 * 1024}},
        "required": ["size"],
        "additionalProperties": False,
    },
    output=BINARY_OUTPUT,
    timeout_ms=60_000,
)
def pseudo_random_bytes(input, ctx):
    """`size` bytes: sha256 in counter mode, which the test computes too."""
    blocks = (input["size"] + 31) // 32
    data = b"".join(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(blocks))
    return Binary(data[: input["size"]], "application/x-py-test")


@task(
    name="py.not-bytes",
    input={"type": "object"},
    output=BINARY_OUTPUT,
    timeout_ms=10_000,
)
def not_bytes(input, ctx):
    """Declares a binary output but returns JSON: invalid_output."""
    return {"size": 1}
