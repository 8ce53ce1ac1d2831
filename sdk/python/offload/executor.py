"""A Python executor: one warm process that runs Offload tasks, one job at a time.

A worker starts `python3 -m offload.executor tasks.py [more.py …]` and talks to
it over two pipes it opens for that purpose, never over stdin or stdout, so
whatever a task prints cannot corrupt the exchange. PROTOCOL.md describes the
messages; in short, one JSON object per line:

    fd 3, worker → executor:  {"type": "run", "jobId", "task", "input"}  {"type": "abort", "reason"}
    fd 4, executor → worker:  {"type": "ready", "tasks"}  {"type": "fatal", "file", "message"}
                              {"type": "progress", "value"}  {"type": "log", "line"}
                              {"type": "done", "bytes", "result"}  {"type": "failed", "code", "message", "final"}
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from ._binary import BINARY_OUTPUT, Binary
from ._schema import problems
from ._tasks import TaskSpec, declared

REQUEST_FD = 3
MESSAGE_FD = 4
#: At most one progress message per this many seconds; tasks may report in tight loops.
PROGRESS_EVERY_S = 0.1


class LoadError(Exception):
    """A tasks file that cannot serve: the worker refuses to start, naming the file."""

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        super().__init__(message)


class Channel:
    """The executor's side of fd 4: whole JSON lines, from any thread."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message, ensure_ascii=False, allow_nan=False))

    def send_line(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def send_binary(self, header: dict[str, Any], data: bytes) -> None:
        """A `done` line that announces `len(data)` raw bytes, then the bytes themselves: no JSON, no base64."""
        with self._lock:
            self._stream.write(json.dumps(header) + "\n")
            self._stream.flush()
            self._stream.buffer.write(data)
            self._stream.buffer.flush()


class LogWriter:
    """Stands in for sys.stdout and sys.stderr: each printed line becomes a line of the job's log."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._channel.send({"type": "log", "line": line})
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._channel.send({"type": "log", "line": self._partial})
            self._partial = ""

    def isatty(self) -> bool:
        return False


class FdOutput:
    """Fd 1 as C code and child processes see it: a pipe this process reads, each line a log line.

    Read here rather than by the worker, so a job's end can wait for what the
    job wrote: `sync` writes a marker and returns once the reader has passed it.
    """

    MARK = b"\x00offload-sync"

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        read, write = os.pipe()
        os.dup2(write, 1)
        os.close(write)
        self._synced = threading.Event()
        threading.Thread(target=self._pump, args=(read,), name="offload-fd1", daemon=True).start()

    def _pump(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as stream:
            for raw in stream:
                line = raw.rstrip(b"\n")
                synced = line.endswith(self.MARK)
                if synced:
                    line = line[: -len(self.MARK)]
                if line or not synced:
                    self._channel.send({"type": "log", "line": line.decode("utf-8", "replace")})
                if synced:
                    self._synced.set()

    def sync(self) -> None:
        self._synced.clear()
        os.write(1, self.MARK + b"\n")
        self._synced.wait(1.0)


class RunContext:
    """The `ctx` a task runs with (offload.Context)."""

    def __init__(self, channel: Channel, cancel: threading.Event) -> None:
        self._channel = channel
        self._cancel = cancel
        self._last_progress = 0.0

    def progress(self, value: float | dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        if isinstance(value, dict):
            self._channel.send({"type": "progress", "value": value})
        else:
            self._channel.send({"type": "progress", "value": min(100.0, max(0.0, float(value)))})

    def log(self, line: str) -> None:
        self._channel.send({"type": "log", "line": str(line)})

    @property
    def canceled(self) -> bool:
        return self._cancel.is_set()


def load(files: list[str]) -> list[tuple[str, TaskSpec]]:
    """Imports every tasks file; returns each task with its file; raises LoadError for the first that cannot serve."""
    tasks: list[tuple[str, TaskSpec]] = []
    for index, file in enumerate(files):
        path = Path(file).resolve()
        if not path.is_file():
            raise LoadError(file, f"no such file: {path}")
        # Its own folder first on the path, so a tasks file imports its sibling modules.
        sys.path.insert(0, str(path.parent))
        name = f"offload_tasks_{index}_{path.stem}"
        before = len(declared())
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise LoadError(file, "is not a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except LoadError:
            raise
        except BaseException as err:  # noqa: BLE001 - whatever the import raised, the file cannot serve
            raise LoadError(file, f"failed to import: {describe(err)}") from err
        mine = declared()[before:]
        if not mine:
            raise LoadError(file, "declares no task (no function decorated with @task from offload)")
        tasks.extend((file, spec_) for spec_ in mine)
    return tasks


def describe(err: BaseException) -> str:
    """`ValueError: bad input`, as Python prints the last line of a traceback."""
    text = str(err)
    if isinstance(err, SystemExit):
        text = "" if err.code is None else str(err.code)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Executor:
    def __init__(self, tasks: dict[str, TaskSpec], channel: Channel, output: FdOutput) -> None:
        self.tasks = tasks
        self.channel = channel
        self.output = output
        self.jobs: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cancel: threading.Event | None = None

    def read(self, requests: TextIO) -> None:
        """The reader thread: queues runs, flags aborts; at end of input the worker is gone."""
        for line in requests:
            message = json.loads(line)
            if message.get("type") == "abort":
                cancel = self.cancel
                if cancel is not None:
                    cancel.set()
            else:
                self.jobs.put(message)
        # The worker closed the pipe, or died (even by SIGKILL): nothing of this executor may outlive it.
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(0)

    def serve(self) -> None:
        while True:
            self.run(self.jobs.get())

    def run(self, message: dict[str, Any]) -> None:
        name = message.get("task")
        spec = self.tasks.get(str(name))
        if spec is None:
            self.failed("task_error", f'Unknown task "{name}"', final=True)
            return
        found = problems(message.get("input"), spec.input, "input")
        if found:
            detail = "; ".join(f"{path}: {text}" for path, text in found)
            self.failed("invalid_input", f"The input does not fit task {spec.name}: {detail}", final=True)
            return
        cancel = threading.Event()
        self.cancel = cancel
        try:
            result = spec.run(message.get("input"), RunContext(self.channel, cancel))
        except MemoryError as err:
            self.traceback(err)
            cap = os.environ.get("OFFLOAD_EXECUTOR_MEMORY_MB")
            limit = f" of {cap} MB" if cap else ""
            self.failed("out_of_memory", f"{describe(err)}: the task exceeded the executor memory cap{limit}")
            return
        except BaseException as err:  # noqa: BLE001 - sys.exit and KeyboardInterrupt fail the attempt too
            self.traceback(err)
            self.failed("task_error", describe(err))
            return
        finally:
            self.cancel = None
            sys.stdout.flush()
            sys.stderr.flush()
            self.output.sync()
        if isinstance(result, Binary) or spec.output == BINARY_OUTPUT:
            self.done_binary(spec, result)
            return
        try:
            encoded = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            self.failed("invalid_output", f"Task {spec.name} returned a value that is not JSON: {err}", final=True)
            return
        found = problems(result, spec.output, "output")
        if found:
            detail = "; ".join(f"{path}: {text}" for path, text in found)
            self.failed("invalid_output", f"Task {spec.name} returned an invalid result: {detail}", final=True)
            return
        # The worker bounds results by this size (WORKER_MAX_RESULT_BYTES) without measuring them itself.
        size = len(encoded.encode("utf-8"))
        self.channel.send_line('{"type": "done", "bytes": ' + str(size) + ', "result": ' + encoded + "}")

    def done_binary(self, spec: TaskSpec, result: Any) -> None:
        """A task returns Binary exactly when its output is BINARY_OUTPUT; its bytes go to the worker as they are."""
        if not isinstance(result, Binary) or spec.output != BINARY_OUTPUT:
            self.failed(
                "invalid_output",
                f"Task {spec.name} returned {type(result).__name__}: a task returns offload.Binary "
                "exactly when its output is offload.BINARY_OUTPUT",
                final=True,
            )
            return
        header = {"type": "done", "bytes": len(result.data), "binary": {"contentType": result.content_type}}
        self.channel.send_binary(header, result.data)

    def traceback(self, err: BaseException) -> None:
        """The failure's traceback, from the task's own frames, as one entry of the job's log."""
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__.tb_next if err.__traceback__ else None))
        self.channel.send({"type": "log", "line": text.rstrip("\n")})

    def failed(self, code: str, message: str, final: bool = False) -> None:
        self.channel.send({"type": "failed", "code": code, "message": message, "final": final})


def cap_memory() -> None:
    """WORKER_EXECUTOR_MEMORY_MB, passed as OFFLOAD_EXECUTOR_MEMORY_MB: the process' address space."""
    megabytes = os.environ.get("OFFLOAD_EXECUTOR_MEMORY_MB")
    if not megabytes:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = int(megabytes) * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main(files: list[str]) -> int:
    # Node hands fds 3 and 4 over inheritable; a task's own child processes must not hold them.
    os.set_inheritable(REQUEST_FD, False)
    os.set_inheritable(MESSAGE_FD, False)
    channel = Channel(os.fdopen(MESSAGE_FD, "w", encoding="utf-8", newline="\n"))
    requests = os.fdopen(REQUEST_FD, "r", encoding="utf-8")
    cap_memory()
    try:
        loaded = load(files)
    except LoadError as err:
        channel.send({"type": "fatal", "file": err.file, "message": str(err)})
        return 1
    sys.stdout = LogWriter(channel)
    sys.stderr = LogWriter(channel)
    executor = Executor({spec.name: spec for _, spec in loaded}, channel, FdOutput(channel))
    threading.Thread(target=executor.read, args=(requests,), name="offload-requests", daemon=True).start()
    tasks = [{**spec.catalog_entry(), "file": file} for file, spec in loaded]
    channel.send({"type": "ready", "tasks": tasks, "python": sys.executable})
    executor.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
