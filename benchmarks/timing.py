"""Timing shared by the benchmark scripts (run as `python benchmarks/X.py`, which puts this
directory on sys.path)."""
import statistics
import time


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
  """Median wall seconds of `repeats` calls of fn() (which must wait for its result), after
  `warmup` untimed calls (compilation, caches)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)
