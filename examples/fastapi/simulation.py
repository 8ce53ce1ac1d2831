"""The heavy part: a Monte Carlo estimate of pi, pure Python, CPU-bound, holding the GIL."""

import random
from typing import Callable, Optional


def estimate_pi(samples: int, seed: int, progress: Optional[Callable[[float], None]] = None) -> float:
    rng = random.Random(seed)
    inside = 0
    step = max(1, samples // 100)
    for i in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
        if progress and i % step == 0:
            progress(100 * i / samples)
    return 4 * inside / samples
