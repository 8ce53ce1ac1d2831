"""A FastAPI app whose heavy endpoint used to serialise the whole server.

Before: `POST /simulations/inline` computes inside an `async def` handler, as
in "FastAPI runs api-calls in serial instead of parallel fashion": while it
runs, the event loop serves nobody, not even `/ping`.

After: `POST /simulations` hands the work to Offload and answers at once with
the job id; the computation runs in an Offload worker (tasks.py), on every
core, while this server keeps answering. `GET /simulations/{id}?wait=10`
long-polls Offload for the result.

    OFFLOAD_URL=http://127.0.0.1:3000 PYTHONPATH=sdk/python:examples/fastapi \
        python3 -m uvicorn app:app --port 8000
"""

import os

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from offload import Client, ProblemError
from simulation import estimate_pi

offload = Client(os.environ.get("OFFLOAD_URL", "http://127.0.0.1:3000"), api_key=os.environ.get("OFFLOAD_API_KEY"))
app = FastAPI(title="Simulations")


class Simulation(BaseModel):
    samples: int = Field(ge=1, le=50_000_000)
    seed: int = Field(default=0, ge=0, le=2**31)


@app.get("/ping")
async def ping() -> dict:
    return {"pong": True}


@app.post("/simulations/inline")
async def simulate_inline(simulation: Simulation) -> dict:
    # The old way: CPU work on the event loop. Every other request waits for it.
    return {"pi": estimate_pi(simulation.samples, simulation.seed), "samples": simulation.samples}


# Plain `def`: FastAPI runs these in its thread pool, so the client's blocking
# HTTP calls never hold the event loop either.
@app.post("/simulations", status_code=202)
def simulate(simulation: Simulation) -> dict:
    try:
        job = offload.submit("sim.pi", {"samples": simulation.samples, "seed": simulation.seed})
    except ProblemError as err:
        raise HTTPException(status_code=err.status, detail=err.problem) from err
    return {"jobId": job["id"], "state": job["state"]}


@app.get("/simulations/{job_id}")
def simulation_status(job_id: str, wait: float = Query(default=0, ge=0, le=60)) -> JSONResponse:
    try:
        job = offload.wait(job_id, timeout=wait) if wait else offload.get(job_id)
    except ProblemError as err:
        raise HTTPException(status_code=err.status, detail=err.problem) from err
    return JSONResponse({key: job[key] for key in ("id", "state", "progress", "result", "error", "startedAt", "finishedAt")})
