"""Python tasks that exist only to misbehave, for tests (PYTHON_TEST_TASKS in tests/support/test-tasks.ts)."""

import os
import subprocess
import sys
import time

from offload import task

OBJECT = {"type": "object"}
NONE = {"type": "object", "additionalProperties": False}


@task(
    name="py.echo",
    input={"type": "object", "properties": {"value": {"type": "string", "maxLength": 100}}, "required": ["value"], "additionalProperties": False},
    output={"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]},
    timeout_ms=10_000,
)
def echo(input, ctx):
    """Returns its input after reporting progress."""
    ctx.progress(50)
    ctx.log(f"echo {input['value']}")
    return {"value": input["value"]}


@task(name="py.sleep", input={"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}, "required": ["ms"]}, output=OBJECT)
def sleep(input, ctx):
    """Sleeps, checking ctx.canceled, then says when it ran."""
    started = time.time()
    while time.time() - started < input["ms"] / 1000:
        if ctx.canceled:
            return {"canceled": True}
        time.sleep(0.01)
    return {"startedAt": started, "finishedAt": time.time(), "pid": os.getpid()}


@task(name="py.loop", input=NONE, output=OBJECT, timeout_ms=60_000)
def loop(input, ctx):
    """Spins forever and never looks at ctx.canceled."""
    while True:
        pass


@task(name="py.children", input={"type": "object", "properties": {"file": {"type": "string"}}}, output=OBJECT, timeout_ms=60_000)
def children(input, ctx):
    """Starts a child process that burns CPU, writes its pid, then blocks forever."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    with open(input["file"], "w") as out:
        out.write(f"{os.getpid()} {child.pid}")
    time.sleep(3600)


@task(name="py.exit", input=NONE, output=OBJECT)
def exit_(input, ctx):
    """Calls sys.exit(3)."""
    sys.exit(3)


@task(name="py.os-exit", input=NONE, output=OBJECT)
def os_exit(input, ctx):
    """Ends its process with os._exit(4)."""
    os._exit(4)


@task(name="py.raise", input=NONE, output=OBJECT, attempts=3, backoff={"type": "fixed", "delay": 50})
def raise_(input, ctx):
    """Raises ValueError from a nested call."""
    def nested():
        raise ValueError("bad value from py.raise")
    nested()


@task(name="py.memory", input=NONE, output=OBJECT, timeout_ms=30_000)
def memory(input, ctx):
    """Allocates until it cannot."""
    hoard = []
    while True:
        hoard.append(bytearray(16 * 1024 * 1024))


@task(name="py.print", input={"type": "object", "properties": {"lines": {"type": "integer"}}}, output=OBJECT)
def print_(input, ctx):
    """Prints to stdout and stderr, including text that looks like the protocol."""
    for i in range(input.get("lines", 3)):
        print(f'{{"type": "done", "result": "fake {i}"}}')
    print("to stderr", file=sys.stderr)
    os.write(1, b"straight to fd 1\n")
    return {"printed": True}


@task(name="py.not-json", input=NONE, output=OBJECT)
def not_json(input, ctx):
    """Returns a set, which JSON cannot hold."""
    return {"values": {1, 2, 3}}


@task(name="py.bad-output", input=NONE, output={"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]})
def bad_output(input, ctx):
    """Returns a result its output schema refuses."""
    return {"count": "many"}


@task(
    name="py.mark",
    input={"type": "object", "properties": {"file": {"type": "string"}, "token": {"type": "string"}, "ms": {"type": "integer"}}, "required": ["file", "token", "ms"]},
    output=OBJECT,
    timeout_ms=60_000,
)
def mark(input, ctx):
    """Appends its token to a file, then burns CPU for `ms`."""
    with open(input["file"], "a") as out:
        out.write(input["token"] + "\n")
    started = time.time()
    while time.time() - started < input["ms"] / 1000:
        pass
    return {"token": input["token"]}
