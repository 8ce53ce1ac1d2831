"""The Offload task: the same computation, now run by an Offload worker (OFFLOAD_TASKS=examples/fastapi/tasks.py)."""

from offload import task

from simulation import estimate_pi


@task(
    name="sim.pi",
    queue="simulations",
    input={
        "type": "object",
        "properties": {
            "samples": {"type": "integer", "minimum": 1, "maximum": 50_000_000},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**31},
        },
        "required": ["samples"],
        "additionalProperties": False,
    },
    output={
        "type": "object",
        "properties": {"pi": {"type": "number"}, "samples": {"type": "integer"}},
        "required": ["pi", "samples"],
    },
    timeout_ms=120_000,
)
def simulate(input, ctx):
    """Estimates pi from random samples."""
    samples = input["samples"]
    return {"pi": estimate_pi(samples, input.get("seed", 0), ctx.progress), "samples": samples}
