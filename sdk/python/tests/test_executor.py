"""The executor over its protocol (PROTOCOL.md), driven the way a worker drives it."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from pathlib import Path
from typing import Any

SDK = Path(__file__).resolve().parent.parent

TASKS = textwrap.dedent('''
    import time
    from offload import task

    @task(name="ex.add", input={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
          "required": ["a", "b"]}, output={"type": "object", "properties": {"sum": {"type": "integer"}}})
    def add(input, ctx):
        """Adds two integers."""
        ctx.progress(50)
        ctx.log("adding")
        print("printed, not protocol")
        return {"sum": input["a"] + input["b"]}

    @task(name="ex.wait", input={"type": "object"}, output={"type": "object"})
    def wait(input, ctx):
        while not ctx.canceled:
            time.sleep(0.005)
        return {"noticed": True}

    @task(name="ex.fail", input={"type": "object"}, output={"type": "object"})
    def fail(input, ctx):
        raise KeyError("missing")
''')


class Executor:
    """One executor process with the worker's side of fds 3 and 4."""

    def __init__(self, source: str) -> None:
        self.folder = tempfile.TemporaryDirectory()
        path = Path(self.folder.name) / "tasks.py"
        path.write_text(source)
        to_child_read, self._requests = os.pipe()
        self._replies, from_child_write = os.pipe()
        # The executor reads requests on fd 3 and writes replies on fd 4.
        os.dup2(to_child_read, 103)
        os.dup2(from_child_write, 104)
        env = {**os.environ, "PYTHONPATH": str(SDK)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import os; os.dup2(103, 3); os.dup2(104, 4); os.close(103); os.close(104);"
             "import runpy, sys; sys.argv = ['offload.executor', sys.argv[1]];"
             "runpy.run_module('offload.executor', run_name='__main__')", str(path)],
            pass_fds=(103, 104), env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        for fd in (to_child_read, from_child_write, 103, 104):
            os.close(fd)
        self.replies = os.fdopen(self._replies, "r")

    def send(self, message: dict[str, Any]) -> None:
        os.write(self._requests, (json.dumps(message) + "\n").encode())

    def read(self) -> dict[str, Any]:
        return json.loads(self.replies.readline())

    def until_end(self) -> list[dict[str, Any]]:
        """Messages up to and including the job's done or failed."""
        messages = [self.read()]
        while messages[-1]["type"] not in ("done", "failed"):
            messages.append(self.read())
        return messages

    def close(self) -> None:
        os.close(self._requests)
        self.process.wait(5)
        self.replies.close()
        self.folder.cleanup()


class ExecutorTest(unittest.TestCase):
    def setUp(self) -> None:
        self.executor = Executor(TASKS)
        self.addCleanup(self.executor.close)

    def test_announces_its_tasks_then_runs_jobs_in_order_of_messages(self) -> None:
        ready = self.executor.read()
        self.assertEqual(ready["type"], "ready")
        self.assertEqual([t["name"] for t in ready["tasks"]], ["ex.add", "ex.wait", "ex.fail"])
        self.assertEqual(ready["tasks"][0]["description"], "Adds two integers.")
        self.assertTrue(ready["tasks"][0]["file"].endswith("tasks.py"))
        self.executor.send({"type": "run", "jobId": "1", "task": "ex.add", "input": {"a": 2, "b": 3}})
        self.assertEqual(self.executor.until_end(), [
            {"type": "progress", "value": 50.0},
            {"type": "log", "line": "adding"},
            {"type": "log", "line": "printed, not protocol"},
            {"type": "done", "bytes": 10, "result": {"sum": 5}},
        ])

    def test_fails_an_input_that_misses_the_schema_without_running_it(self) -> None:
        self.executor.read()
        self.executor.send({"type": "run", "jobId": "2", "task": "ex.add", "input": {"a": "2"}})
        self.assertEqual(self.executor.until_end(), [{
            "type": "failed", "code": "invalid_input", "final": True,
            "message": "The input does not fit task ex.add: input.b: is required; input.a: must be integer, not string",
        }])

    def test_reports_an_exception_with_its_traceback(self) -> None:
        self.executor.read()
        self.executor.send({"type": "run", "jobId": "3", "task": "ex.fail", "input": {}})
        log, failed = self.executor.until_end()
        self.assertRegex(log["line"], r"^Traceback \(most recent call last\):\n.*tasks\.py\", line \d+, in fail")
        self.assertEqual(failed, {"type": "failed", "code": "task_error", "message": "KeyError: 'missing'",
                                  "final": False})

    def test_abort_sets_ctx_canceled(self) -> None:
        self.executor.read()
        self.executor.send({"type": "run", "jobId": "4", "task": "ex.wait", "input": {}})
        time.sleep(0.05)
        self.executor.send({"type": "abort", "reason": "Canceled by request"})
        self.assertEqual(self.executor.until_end(), [{"type": "done", "bytes": 17, "result": {"noticed": True}}])

    def test_exits_with_its_group_when_the_worker_closes_the_pipe(self) -> None:
        self.executor.read()
        self.executor.send({"type": "run", "jobId": "5", "task": "ex.wait", "input": {}})
        started = time.monotonic()
        os.close(self.executor._requests)
        self.executor._requests = os.open(os.devnull, os.O_WRONLY)
        self.executor.process.wait(2)
        self.assertLess(time.monotonic() - started, 2)


class LoadErrorTest(unittest.TestCase):
    def test_a_file_that_does_not_import_is_one_fatal_message(self) -> None:
        executor = Executor("import no_such_module\n")
        self.addCleanup(executor.close)
        fatal = executor.read()
        self.assertEqual(fatal["type"], "fatal")
        self.assertTrue(fatal["file"].endswith("tasks.py"))
        self.assertEqual(fatal["message"], "failed to import: ModuleNotFoundError: No module named 'no_such_module'")
        self.assertEqual(executor.process.wait(5), 1)


if __name__ == "__main__":
    unittest.main()
