"""The client against a real Offload API and worker: `npm test` starts them and sets OFFLOAD_TEST_URL."""

import os
import time
import unittest

from offload import Client, ProblemError
from offload.client import OfflineError

URL = os.environ.get("OFFLOAD_TEST_URL")


@unittest.skipUnless(URL, "needs a running Offload API serving tests/support/python/test_tasks.py (npm test starts one)")
class ClientTest(unittest.TestCase):
    def setUp(self) -> None:
        self.offload = Client(URL or "")

    def test_submit_then_wait_for_the_result(self) -> None:
        job = self.offload.submit("py.echo", {"value": "hello"})
        self.assertIn(job["state"], ("queued", "running", "completed"))
        done = self.offload.wait(job["id"], timeout=20)
        self.assertEqual(done["state"], "completed")
        self.assertEqual(done["result"], {"value": "hello"})
        self.assertEqual(self.offload.get(job["id"])["result"], {"value": "hello"})

    def test_errors_raise_problem_error_with_the_problem_document(self) -> None:
        with self.assertRaises(ProblemError) as raised:
            self.offload.submit("py.echo", {"value": 1, "extra": True})
        self.assertEqual((raised.exception.status, raised.exception.code), (422, "validation_failed"))
        self.assertEqual(sorted(e["path"] for e in raised.exception.problem["errors"]),
                         ["input.extra", "input.value"])
        with self.assertRaises(ProblemError) as raised:
            self.offload.submit("no.such-task", {})
        self.assertEqual(raised.exception.code, "unknown_task")
        with self.assertRaises(ProblemError) as raised:
            self.offload.get("A" * 27)
        self.assertEqual(raised.exception.status, 404)

    def test_wait_with_a_timeout_answers_the_job_as_it_stands_then_cancel(self) -> None:
        job = self.offload.submit("py.sleep", {"ms": 20_000})
        started = time.monotonic()
        view = self.offload.wait(job["id"], timeout=0.3)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn(view["state"], ("queued", "running"))
        self.assertEqual(self.offload.cancel(job["id"])["state"], "canceled")
        self.assertEqual(self.offload.cancel(job["id"])["state"], "canceled")

    def test_cancel_of_a_finished_job_is_a_409(self) -> None:
        job = self.offload.submit("py.echo", {"value": "done"})
        self.offload.wait(job["id"], timeout=20)
        with self.assertRaises(ProblemError) as raised:
            self.offload.cancel(job["id"])
        self.assertEqual(raised.exception.status, 409)

    def test_options_and_idempotency_key(self) -> None:
        delayed = self.offload.submit("py.echo", {"value": "later"}, delay_ms=60_000, attempts=2)
        self.assertEqual(delayed["state"], "delayed")
        self.assertEqual(delayed["attempts"]["max"], 2)
        self.offload.cancel(delayed["id"])
        first = self.offload.submit("py.echo", {"value": "once"}, idempotency_key=f"k-{time.time()}")
        with self.assertRaisesRegex(TypeError, "unknown job option"):
            self.offload.submit("py.echo", {"value": "x"}, delay=5)
        self.assertTrue(first["id"])

    def test_a_webhook_option_reaches_the_api(self) -> None:
        # The test API gives no tenant a signing secret, so the webhook is refused by name.
        with self.assertRaises(ProblemError) as raised:
            self.offload.submit("py.echo", {"value": "x"}, webhook={"url": "https://93.184.215.14/hook"})
        self.assertEqual(raised.exception.code, "webhook_secret_missing")
        with self.assertRaises(ProblemError) as raised:
            self.offload.submit_workflow(
                {"a": {"task": "py.echo", "input": {"value": "x"}}}, webhook={"url": "https://93.184.215.14/hook"}
            )
        self.assertEqual(raised.exception.code, "webhook_secret_missing")

    def test_events_end_with_the_final_one(self) -> None:
        job = self.offload.submit("py.echo", {"value": "streamed"})
        events = list(self.offload.events(job["id"]))
        self.assertEqual(events[-1][0], "completed")
        self.assertEqual(events[-1][1]["result"], {"value": "streamed"})

    def test_events_reopen_a_stream_the_server_ends_and_still_end_with_the_final_one(self) -> None:
        # The test API ends every stream after OFFLOAD_TEST_STREAM_MAX_S seconds.
        lifetime_s = float(os.environ.get("OFFLOAD_TEST_STREAM_MAX_S", "1"))
        job = self.offload.submit("py.sleep", {"ms": int(lifetime_s * 2500)})
        events = list(self.offload.events(job["id"]))
        self.assertEqual(events[-1][0], "completed")
        self.assertIn("finishedAt", events[-1][1]["result"])
        # One `state` event when the job starts running; each reopened stream starts with one more.
        running = [view for kind, view in events if kind == "state" and view["state"] == "running"]
        self.assertGreaterEqual(len(running), 2, events)

    def test_a_workflow_passes_a_result_on_and_ends(self) -> None:
        flow = self.offload.submit_workflow(
            {
                "first": {"task": "py.echo", "input": {"value": "passed on"}},
                "second": {"task": "py.echo", "input": {"value": {"$result": "first.value"}}, "needs": ["first"]},
            },
            idempotency_key=f"py-flow-{time.time()}",
        )
        self.assertEqual(flow["steps"]["second"]["state"], "blocked")
        done = self.offload.wait_workflow(flow["id"], timeout=30)
        self.assertEqual(done["state"], "completed")
        self.assertEqual(done["steps"]["second"]["result"], {"value": "passed on"})
        self.assertEqual(self.offload.get_workflow(flow["id"])["state"], "completed")
        with self.assertRaises(ProblemError) as raised:
            self.offload.cancel_workflow(flow["id"])
        self.assertEqual((raised.exception.status, raised.exception.code), (409, "workflow_finished"))

    def test_tasks_lists_the_catalog(self) -> None:
        names = [t["name"] for t in self.offload.tasks()]
        self.assertIn("py.echo", names)


class OfflineTest(unittest.TestCase):
    def test_an_unreachable_api_is_an_offline_error(self) -> None:
        with self.assertRaisesRegex(OfflineError, "Could not reach http://127.0.0.1:9"):
            Client("http://127.0.0.1:9").get("A" * 27)


if __name__ == "__main__":
    unittest.main()
