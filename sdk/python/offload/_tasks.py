"""Declaring Python tasks: the `@task` decorator and the context a task runs with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

__all__ = ["Context", "TaskSpec", "task", "declared"]

JsonSchema = dict[str, Any]

# The same bounds as a TypeScript task's definition (apps/worker/src/task-modules.ts).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_TIMEOUT_MS = 24 * 3600 * 1000
# A job's input arrives in a request body, which the API caps (API_MAX_BODY_BYTES, 1 MiB by default).
_MAX_INPUT_BYTES = 1 << 30
DEFAULT_QUEUE = "default"


class Context(Protocol):
    """What a running task is handed besides its input."""

    def progress(self, value: float | dict[str, Any]) -> None:
        """Reports progress, 0–100 (or a dict whose `percent` is that); cheap to call often."""

    def log(self, line: str) -> None:
        """Appends a line to the job's log."""

    @property
    def canceled(self) -> bool:
        """True once the job is canceled, times out or its worker shuts down.

        A task that checks it and returns within 200 ms keeps its executor warm;
        one that does not is killed with its executor (and its child processes).
        """


TaskFunction = Callable[[Any, Context], Any]


@dataclass(frozen=True)
class TaskSpec:
    """One declared task, as the worker publishes it to the catalog."""

    name: str
    queue: str
    input: JsonSchema
    output: JsonSchema
    timeout_ms: int
    attempts: int
    backoff: dict[str, Any]
    description: str
    run: TaskFunction = field(repr=False)
    max_input_bytes: int | None = None

    def catalog_entry(self) -> dict[str, Any]:
        """The catalog's fields for this task (DESIGN.md §2); the worker adds the fingerprint."""
        return {
            "name": self.name,
            "description": self.description,
            "queue": self.queue,
            "input": self.input,
            "output": self.output,
            "defaults": {"timeoutMs": self.timeout_ms, "attempts": self.attempts, "backoff": self.backoff},
            **({"maxInputBytes": self.max_input_bytes} if self.max_input_bytes is not None else {}),
        }


#: Every task declared in this process, in declaration order.
_declared: list[TaskSpec] = []


def declared() -> list[TaskSpec]:
    """The tasks declared so far in this process."""
    return list(_declared)


def task(
    *,
    name: str,
    input: JsonSchema,
    output: JsonSchema,
    queue: str = DEFAULT_QUEUE,
    timeout_ms: int = 60_000,
    attempts: int = 1,
    backoff: dict[str, Any] | None = None,
    description: str | None = None,
    max_input_bytes: int | None = None,
) -> Callable[[TaskFunction], TaskFunction]:
    """Declares the decorated function `fn(input, ctx)` as an Offload task.

    `input` and `output` are JSON Schemas (draft 2020-12): the API validates
    submits against `input`, the executor checks the result against `output`.
    `timeout_ms` is the hard limit of one attempt; `attempts` counts the first;
    `backoff` is `{"type": "fixed" | "exponential", "delay": ms}` between attempts.
    `max_input_bytes` is the largest input (bytes of its JSON) one job may carry;
    unset, the API's API_MAX_INPUT_BYTES (64 KiB) applies.
    The description defaults to the first line of the function's docstring.
    """

    def declare(fn: TaskFunction) -> TaskFunction:
        if not callable(fn):
            raise TypeError(f'@task(name="{name}") must decorate a function')
        doc = (fn.__doc__ or "").strip().splitlines()
        spec = TaskSpec(
            name=_checked_name(name),
            queue=_checked_queue(queue),
            input=_checked_schema(name, "input", input),
            output=_checked_schema(name, "output", output),
            timeout_ms=_checked_int(name, "timeout_ms", timeout_ms, 100, _MAX_TIMEOUT_MS),
            attempts=_checked_int(name, "attempts", attempts, 1, 25),
            backoff=_checked_backoff(name, backoff or {"type": "exponential", "delay": 1000}),
            description=description if description is not None else (doc[0] if doc else ""),
            run=fn,
            max_input_bytes=None
            if max_input_bytes is None
            else _checked_int(name, "max_input_bytes", max_input_bytes, 1, _MAX_INPUT_BYTES),
        )
        if any(other.name == spec.name for other in _declared):
            raise ValueError(f'task "{spec.name}" is declared twice')
        _declared.append(spec)
        return fn

    return declare


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"task name {name!r} must be letters, digits and . _ : - (at most 100)")
    return name


def _checked_queue(queue: Any) -> str:
    if not isinstance(queue, str) or not _QUEUE.match(queue):
        raise ValueError(f"queue {queue!r} must be letters, digits and . _ - (at most 64)")
    return queue


def _checked_schema(name: str, which: str, schema: Any) -> JsonSchema:
    if not isinstance(schema, dict):
        raise TypeError(f'task "{name}": {which} must be a JSON Schema (a dict), not {type(schema).__name__}')
    return schema


def _checked_int(name: str, which: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f'task "{name}": {which} must be an integer from {low} to {high}, not {value!r}')
    return value


def _checked_backoff(name: str, backoff: Any) -> dict[str, Any]:
    kind = backoff.get("type") if isinstance(backoff, dict) else None
    delay = backoff.get("delay") if isinstance(backoff, dict) else None
    if kind not in ("fixed", "exponential") or isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ValueError(f'task "{name}": backoff must be {{"type": "fixed" | "exponential", "delay": ms >= 0}}')
    return {"type": kind, "delay": delay}
