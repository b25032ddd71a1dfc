"""How a job ends, as exit codes a scheduler can act on, and the exceptions that carry them.

  0   finished.
  1   stopped on an error the message explains (full disk, read-only or busy workdir, missing
      data, a non-finite loss, unreadable checkpoints); fix what it says, then rerun.
  2   the command line or the config is wrong (unknown field, value out of range, no such
      config file); nothing ran.
  75  preempted (SIGTERM): the step reached was saved; rerun the same command to resume
      (EX_TEMPFAIL of sysexits.h, which schedulers read as "try again").
  130 interrupted (Ctrl-C): during the steps, the step reached was saved; before them, nothing
      was lost but the start-up. Rerun to resume.

main.py turns these exceptions (and OSErrors) into one line on stderr and the code; the modules
that raise them import nothing else, so this file sits below every other one.
"""

OK = 0
ERROR = 1
USAGE = 2
PREEMPTED = 75
INTERRUPTED = 130


class ConfigError(ValueError):
  """A config field out of its allowed range, found before anything runs (exit 2)."""


class Preempted(Exception):
  """Training stopped at a signal after saving the step it reached: SIGTERM (exit 75) or
  Ctrl-C, SIGINT (exit 130)."""

  def __init__(self, step: int, workdir: str, signal_name: str = 'SIGTERM'):
    what = 'interrupted (Ctrl-C)' if signal_name == 'SIGINT' else f'preempted ({signal_name})'
    super().__init__(f'{what}: saved step {step} in {workdir}/checkpoints; run the same command '
                     'to resume')
    self.step = step
    self.exit_code = INTERRUPTED if signal_name == 'SIGINT' else PREEMPTED


class WorkdirBusy(RuntimeError):
  """Another trainer holds the workdir (exit 1)."""
