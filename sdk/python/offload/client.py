"""A client of the Offload HTTP API, standard library only (urllib)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from ._binary import Binary

__all__ = ["Client", "OfflineError", "ProblemError"]

#: Longest single long-poll the API holds, s.
MAX_WAIT_S = 60.0
FINAL_STATES = frozenset({"completed", "failed", "canceled"})
#: Reconnects in a row that deliver no event before `events` gives up.
MAX_RECONNECTS = 5
#: Job options as Python spells them, and as the API does.
_OPTIONS = {
    "priority": "priority",
    "delay_ms": "delayMs",
    "attempts": "attempts",
    "timeout_ms": "timeoutMs",
    "webhook": "webhook",
}


class ProblemError(Exception):
    """The API answered an error: `problem` is its RFC 9457 document (`status`, `code`, `detail`, `errors`…)."""

    def __init__(self, problem: dict[str, Any]) -> None:
        self.problem = problem
        self.status: int = int(problem.get("status", 0))
        self.code: str = str(problem.get("code", f"http_{self.status}"))
        super().__init__(f"{self.status} {self.code}: {problem.get('detail') or problem.get('title', '')}")


class OfflineError(Exception):
    """No answer at all: the API is unreachable."""


class Client:
    """Submits jobs to an Offload API and follows them.

        offload = Client("http://127.0.0.1:3000", api_key="...")
        job = offload.submit("py.fib", {"n": 80})
        done = offload.wait(job["id"])
        done["result"]  # {"value": 23416728348467685}
    """

    def __init__(self, url: str = "http://127.0.0.1:3000", api_key: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        #: Seconds a request may take beyond the time a long-poll asks the server to hold it.
        self.timeout = timeout

    def submit(self, task: str, input: Any, *, idempotency_key: str | None = None, **options: Any) -> dict[str, Any]:
        """Queues a job and returns its view (state `queued` or `delayed`).

        Options: `priority`, `delay_ms`, `attempts`, `timeout_ms`, and `webhook={"url": "https://…"}`: where the
        job's end is POSTed, signed (README, Webhooks).
        """
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise TypeError(f"unknown job option(s): {', '.join(unknown)}; known: {', '.join(_OPTIONS)}")
        body: dict[str, Any] = {"task": task, "input": input}
        if options:
            body["options"] = {_OPTIONS[name]: value for name, value in options.items()}
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/v1/jobs", body=body, headers=headers)

    def get(self, job_id: str) -> dict[str, Any]:
        """The job as it is now."""
        return self._json("GET", f"/v1/jobs/{_quote(job_id)}")

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job once finished, or as it stands after `timeout` seconds (None: no limit).

        Long-polls, up to 60 s per request, so nothing polls in between.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = MAX_WAIT_S if deadline is None else max(0.0, min(MAX_WAIT_S, deadline - time.monotonic()))
            view = self._json("GET", f"/v1/jobs/{_quote(job_id)}?wait={left:.3f}", hold=left)
            if view["state"] in FINAL_STATES or (deadline is not None and time.monotonic() >= deadline):
                return view

    def result(self, job_id: str) -> Any:
        """A completed job's result alone: the JSON value, or `Binary(data, content_type)` for a task that returned bytes.

        Before the job completes, ProblemError 409 `job_not_finished`; once it
        failed or was canceled, 409 `job_has_no_result`.
        """
        with self._open("GET", f"/v1/jobs/{_quote(job_id)}/result") as res:
            content_type = res.headers.get("content-type", "application/octet-stream")
            data = res.read()
        if content_type.split(";")[0].strip() == "application/json":
            return json.loads(data)
        return Binary(data, content_type)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancels the job and returns its view (state `canceled`); a finished job raises ProblemError 409."""
        return self._json("DELETE", f"/v1/jobs/{_quote(job_id)}")

    def submit_workflow(
        self,
        steps: dict[str, dict[str, Any]],
        *,
        on_step_failure: str | None = None,
        idempotency_key: str | None = None,
        webhook: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Starts a workflow and returns its view: each step's job starts once every step it needs has completed.

        `steps` maps a step id to `{"task", "input", "needs"?, "options"?}` as POST /v1/workflows takes it
        (`options` in the API's spelling: `timeoutMs`, `delayMs`…); `{"$result": "step.field"}` anywhere in an
        input is that step's result, or a field of it. `on_step_failure`: `cancel_rest` (default) or `continue`.
        `webhook={"url": "https://…"}`: where the workflow's end is POSTed, signed (README, Webhooks).
        """
        body: dict[str, Any] = {"steps": steps}
        if on_step_failure is not None:
            body["onStepFailure"] = on_step_failure
        if webhook is not None:
            body["webhook"] = webhook
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/v1/workflows", body=body, headers=headers)

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        """The workflow as it is now: its state, and each step's job."""
        return self._json("GET", f"/v1/workflows/{_quote(workflow_id)}")

    def wait_workflow(self, workflow_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The workflow once ended, or as it stands after `timeout` seconds (None: no limit).

        Long-polls one of its unfinished jobs at a time and reads the workflow when that one ends.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            view = self.get_workflow(workflow_id)
            left = None if deadline is None else deadline - time.monotonic()
            if view["state"] != "running" or (left is not None and left <= 0):
                return view
            live = [s for s in view["steps"].values() if s["state"] not in FINAL_STATES and s["state"] != "blocked"]
            if live:
                self.wait(live[0]["id"], timeout=left)
            else:
                # The last step just ended (the workflow ends at its next advance) or a step waits for quota.
                time.sleep(0.25 if left is None else min(0.25, left))

    def cancel_workflow(self, workflow_id: str) -> dict[str, Any]:
        """Cancels every unfinished step and returns the workflow (state `canceled`); an ended one raises ProblemError 409."""
        return self._json("DELETE", f"/v1/workflows/{_quote(workflow_id)}")

    def tasks(self) -> list[dict[str, Any]]:
        """Every task the workers run, with the JSON Schema of its input and output."""
        return self._json("GET", "/v1/tasks")["tasks"]

    def events(self, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's events as `(type, job view)`: `state`, `progress`, then a final one, where it ends.

        A stream the server ends before the final event (it limits how long one lasts) or that
        drops is opened again; it starts again with a `state` snapshot.
        """
        fruitless = 0
        while True:
            delivered = False
            try:
                for kind, view in self._event_stream(job_id):
                    delivered = True
                    yield kind, view
                    if kind in FINAL_STATES:
                        return
            except (OSError, http.client.HTTPException):
                pass  # The connection broke mid-stream: open it again below.
            fruitless = 0 if delivered else fruitless + 1
            if fruitless > MAX_RECONNECTS:
                raise OfflineError(f"The event stream of job {job_id} kept dropping")

    def _event_stream(self, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """One connection's events, until the server ends it."""
        with self._open("GET", f"/v1/jobs/{_quote(job_id)}/events", headers={"accept": "text/event-stream"}, hold=None) as res:
            kind, data = "message", []
            for raw in res:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    yield kind, json.loads("\n".join(data))
                    kind, data = "message", []

    def _json(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, hold: float = 0.0) -> Any:
        with self._open(method, path, body=body, headers=headers or {}, hold=hold) as res:
            return json.loads(res.read())

    def _open(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, hold: float | None = 0.0) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=dict(headers or {}))
        if data is not None:
            request.add_header("content-type", "application/json")
        if self.api_key:
            request.add_header("authorization", f"Bearer {self.api_key}")
        try:
            return urllib.request.urlopen(request, timeout=None if hold is None else self.timeout + hold)
        except urllib.error.HTTPError as err:
            raise ProblemError(_problem_of(err)) from None
        except (urllib.error.URLError, OSError) as err:
            raise OfflineError(f"Could not reach {self.url}: {err}") from err


def _quote(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")


def _problem_of(err: urllib.error.HTTPError) -> dict[str, Any]:
    """The problem document of an error answer, or one made up for an answer that has none (a proxy's 502)."""
    text = err.read().decode("utf-8", "replace")
    try:
        body = json.loads(text)
        if isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("status"), int):
            return body
    except ValueError:
        pass
    return {
        "type": "about:blank",
        "title": err.reason or "HTTP error",
        "status": err.code,
        "code": f"http_{err.code}",
        "detail": text[:500] or f"HTTP {err.code}",
    }
