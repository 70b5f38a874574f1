"""An agent loop: plan, call a tool, poll until the tool's job is done, repeat.

Each turn asks a planning API for the next action (a step, retried with backoff when the
API is unavailable), starts the tool's job (a step), then polls the job with
``wait_for_condition``: between polls the invocation suspends, so a tool that takes
minutes costs no Lambda time. Every answer is recorded, so a replay (after a poll, a
retry, a crash) walks the same turns without calling the API again, and the loop resumes
at the turn where it stopped.

The API is ``event["api_url"]`` (a server speaking the protocol of ``make_fake_api``) or,
without one, an in-process stand-in with the same behaviour::

    python examples/agent_loop.py
    durable-async run examples/agent_loop.py:handler --input '{"goal": "q3 sales"}'
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from durable_async import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    WaitForConditionCheckContext,
    WaitStrategyConfig,
    create_retry_strategy,
    durable_execution,
)
from durable_async.testing import LocalRunner

MAX_TURNS = 8


class ApiUnavailable(Exception):
    """The API answered 5xx or could not be reached; worth retrying."""


class ToolDesk:
    """The agent API's behaviour: a scripted planner and tools whose jobs take a few polls."""

    def __init__(self, *, polls_per_job: int = 2, unavailable_first: int = 0) -> None:
        self.polls_per_job = polls_per_job
        #: The first this many requests fail with 503 (the API is warming up).
        self.unavailable = unavailable_first
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []

    def _arrive(self, what: str) -> None:
        self.requests.append(what)
        if self.unavailable > 0:
            self.unavailable -= 1
            raise ApiUnavailable(f"{what}: 503 service unavailable")

    def plan(self, goal: str, history: list[dict[str, Any]]) -> dict[str, Any]:
        self._arrive("plan")
        if not history:
            return {"tool": "search", "input": goal}
        if len(history) == 1:
            return {"tool": "summarize", "input": history[0]["output"]}
        return {"final": f"answer: {history[-1]['output']}"}

    def start(self, tool: str, tool_input: str) -> str:
        self._arrive("start")
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = {"polls_left": self.polls_per_job, "output": f"{tool}({tool_input})"}
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        self._arrive("status")
        job = self.jobs[job_id]
        job["polls_left"] -= 1
        if job["polls_left"] > 0:
            return {"job_id": job_id, "status": "RUNNING"}
        return {"job_id": job_id, "status": "DONE", "output": job["output"]}


#: The in-process stand-in, used when the event names no API.
LOCAL_DESK = ToolDesk()


async def call_api(url: str | None, method: str, path: str, body: Any = None) -> Any:
    """One API call: over HTTP when ``url`` is given, else on ``LOCAL_DESK``."""
    if url is None:
        await asyncio.sleep(0)  # the stand-in answers at once; still yield like I/O does
        if path == "/plan":
            return LOCAL_DESK.plan(body["goal"], body["history"])
        if path == "/jobs":
            return {"job_id": LOCAL_DESK.start(body["tool"], body["input"])}
        return LOCAL_DESK.status(path.rsplit("/", 1)[-1])
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url + path, json=body) as response,
        ):
            if response.status >= 500:
                raise ApiUnavailable(f"{path}: {response.status} {response.reason}")
            response.raise_for_status()
            return await response.json()
    except aiohttp.ClientConnectionError as error:
        raise ApiUnavailable(f"{path}: {error}") from error


#: Planning calls are retried while the API is unavailable: 1 s, 2 s, 4 s, 8 s.
API_RETRIES = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5,
            initial_delay=Duration(1),
            backoff_rate=2,
            jitter_strategy=JitterStrategy.NONE,
            retryable_error_types=[ApiUnavailable],
        )
    )
)


@durable_execution
async def handler(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    goal: str = event["goal"]
    url: str | None = event.get("api_url")
    history: list[dict[str, Any]] = []

    async def plan(step: StepContext) -> dict[str, Any]:
        return await call_api(url, "POST", "/plan", {"goal": goal, "history": history})  # type: ignore[no-any-return]

    async def start(step: StepContext, action: dict[str, Any]) -> str:
        body = {"tool": action["tool"], "input": action["input"]}
        return str((await call_api(url, "POST", "/jobs", body))["job_id"])

    async def poll(job: dict[str, Any], check: WaitForConditionCheckContext) -> dict[str, Any]:
        return await call_api(url, "GET", f"/jobs/{job['job_id']}")  # type: ignore[no-any-return]

    for turn in range(1, MAX_TURNS + 1):
        action = await ctx.step(plan, name=f"plan-{turn}", config=API_RETRIES)
        if "final" in action:
            return {"answer": action["final"], "turns": turn, "history": history}
        job_id = await ctx.step(start, action, name=f"start-{action['tool']}", config=API_RETRIES)
        job = await ctx.wait_for_condition(
            poll,
            initial_state={"job_id": job_id, "status": "RUNNING"},
            strategy=WaitStrategyConfig(
                should_continue_polling=lambda job: job["status"] == "RUNNING",
                initial_delay=Duration(5),
                backoff_rate=2,
                max_attempts=20,
                jitter_strategy=JitterStrategy.NONE,
            ),
            name=f"await-{action['tool']}",
        )
        ctx.logger.info("turn %d: %s finished", turn, action["tool"])
        history.append({"tool": action["tool"], "output": job["output"]})
    return {"answer": None, "turns": MAX_TURNS, "history": history}


def make_fake_api(desk: ToolDesk) -> web.Application:
    """An aiohttp app serving ``desk`` over HTTP: the protocol ``call_api`` speaks."""

    def answer(call: Any) -> web.Response:
        try:
            return web.json_response(call())
        except ApiUnavailable as error:
            return web.json_response({"error": str(error)}, status=503)

    async def plan(request: web.Request) -> web.Response:
        body = await request.json()
        return answer(lambda: desk.plan(body["goal"], body["history"]))

    async def start(request: web.Request) -> web.Response:
        body = await request.json()
        return answer(lambda: {"job_id": desk.start(body["tool"], body["input"])})

    async def status(request: web.Request) -> web.Response:
        return answer(lambda: desk.status(request.match_info["job_id"]))

    app = web.Application()
    app.router.add_post("/plan", plan)
    app.router.add_post("/jobs", start)
    app.router.add_get("/jobs/{job_id}", status)
    return app


async def main() -> dict[str, Any]:
    result = await LocalRunner(handler).run({"goal": "q3 sales"})
    print(f"{result.status} after {result.invocations} invocations: {result.result}")
    return result.result  # type: ignore[no-any-return]


if __name__ == "__main__":
    asyncio.run(main())
