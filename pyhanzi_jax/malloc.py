"""glibc's malloc with transparent huge pages, for processes that run XLA:CPU steps.

XLA:CPU allocates a train step's ~0.6 GB of temporaries afresh on every step, and with 4 KiB
pages that costs ~150K page faults per step (~16% of a 2-core CPU step). The glibc tunable
`glibc.malloc.hugetlb=1` (glibc >= 2.35; older ones ignore it) cuts that to ~1K and gave
+12-28% train tokens/s (benchmarks/RESULTS.md). Tunables are read at process start, so a
process that wants them re-executes itself once, before jax is imported.
"""
import os
import sys

TUNABLE = 'glibc.malloc.hugetlb=1'


def reexec_with_huge_pages(command: list[str]) -> None:
  """Replaces this process by `command` with the tunable set; returns (does nothing) when not
  on Linux or when GLIBC_TUNABLES already says something about hugetlb (the user's choice)."""
  tunables = os.environ.get('GLIBC_TUNABLES', '')
  if not sys.platform.startswith('linux') or 'hugetlb' in tunables:
    return
  env = dict(os.environ, GLIBC_TUNABLES=':'.join(filter(None, [tunables, TUNABLE])))
  os.execve(command[0], command, env)
