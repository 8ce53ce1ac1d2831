"""Offload for Python: declare tasks that Offload workers run, and submit jobs over HTTP.

    from offload import task

    @task(name="py.fib", input={...}, output={...}, timeout_ms=10_000, attempts=2)
    def fib(input, ctx): ...

A worker started with `OFFLOAD_TASKS=tasks.py` runs them in warm Python
processes; `Client` submits jobs to the Offload API and waits for their results.
"""

from ._binary import BINARY_OUTPUT, Binary
from ._tasks import Context, TaskSpec, task
from .client import Client, ProblemError

__all__ = ["BINARY_OUTPUT", "Binary", "Client", "Context", "ProblemError", "TaskSpec", "task"]
