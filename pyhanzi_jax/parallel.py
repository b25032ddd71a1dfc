"""Devices, meshes and processes: the same code on 1 CPU, 8 GPUs or a TPU pod.

Data parallelism over a 1-d mesh axis 'data': parameters and optimizer state are replicated,
batches are split along their leading axis. Every process holds its own rows of each global
batch (`data/pipeline.py`) and `jax.make_array_from_process_local_data` assembles the global
array, so the same train step runs unchanged on one process or many.

`data_parallel(config.train.parallel, mesh)` picks how the trainer runs its step: `JitDataParallel`
(jit over the mesh, any number of processes) or `PmapDataParallel` (`jax.pmap` over one process'
devices, for launches that ask for it). Both answer the same four calls, so the training loop
does not branch on the choice.
"""
from __future__ import annotations

import glob
import importlib.util
import os

from absl import logging
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def cluster_environment() -> str:
  """The kind of cluster JAX configures itself in ('slurm', 'openmpi', 'tpu'), or ''.

  Decided from the environment alone: nothing may touch the devices before
  `jax.distributed.initialize`.
  """
  env = os.environ
  if ('SLURM_JOB_ID' in env and 'SLURM_STEP_NODELIST' in env and 'SLURM_PROCID' in env
      and int(env.get('SLURM_NTASKS', '1')) > 1):  # Inside `srun` with several tasks.
    return 'slurm'
  if int(env.get('OMPI_COMM_WORLD_SIZE', '1')) > 1:  # mpirun
    return 'openmpi'
  if any(k in env for k in ('TPU_WORKER_HOSTNAMES', 'TPU_PROCESS_ADDRESSES',
                            'MEGASCALE_COORDINATOR_ADDRESS')):  # GKE / multislice TPU.
    return 'tpu'
  # A Cloud TPU VM: libtpu installed and TPU chips present (/dev/accel* on v2-v4 and v5p,
  # /dev/vfio/N on v5e and v6e). JAX then asks the metadata server for its peers.
  if (importlib.util.find_spec('libtpu') is not None
      and (glob.glob('/dev/accel[0-9]*') or glob.glob('/dev/vfio/[0-9]*'))):
    return 'tpu'
  return ''


def maybe_initialize_distributed(cfg) -> None:
  """Starts JAX's multi-controller runtime when the config or the environment asks for it.

  'auto' initialises on Cloud TPU VMs, under SLURM's `srun` and Open MPI's `mpirun` (where JAX
  finds the coordinator, process count and id by itself) or when a coordinator address is
  given, and does nothing on a plain single machine; 'yes' always does. Outside those clusters
  the coordinator address, process count and id must all be given (launch/ shows how).
  Must run before anything touches the devices.
  """
  mode = cfg.initialize
  if mode not in ('auto', 'yes', 'no'):
    raise ValueError(f"config.distributed.initialize must be 'auto', 'yes' or 'no', got {mode!r}")
  if mode == 'no' or jax.distributed.is_initialized():
    return
  explicit = bool(cfg.coordinator_address)
  cluster = cluster_environment()
  if mode == 'auto' and not (explicit or cluster):
    return
  if not cluster and not (explicit and cfg.num_processes > 0 and cfg.process_id >= 0):
    raise ValueError(
        'multi-process training outside SLURM, Open MPI or a Cloud TPU needs all of '
        'config.distributed.coordinator_address (host:port of process 0), num_processes and '
        f'process_id; got {cfg.coordinator_address!r}, {cfg.num_processes}, {cfg.process_id} '
        '(launch/local_multiprocess.sh sets them for processes on one machine)')
  if cfg.num_processes > 0 and not -1 <= cfg.process_id < cfg.num_processes:
    raise ValueError(f'config.distributed.process_id={cfg.process_id} is not in '
                     f'[0, num_processes={cfg.num_processes})')
  kwargs = {}
  if explicit:
    kwargs['coordinator_address'] = cfg.coordinator_address
  if cfg.num_processes > 0:
    kwargs['num_processes'] = cfg.num_processes
  if cfg.process_id >= 0:
    kwargs['process_id'] = cfg.process_id
  logging.info('jax.distributed.initialize(%s) (cluster: %s)', kwargs, cluster or 'none')
  jax.distributed.initialize(**kwargs)
  logging.info('process %d of %d: %d local devices of %d (%s)', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)


def make_mesh() -> Mesh:
  # jax.sharding.Mesh (Auto axis types): jax.make_mesh defaults to Explicit axes, which Linen's
  # nn.Embed does not support.
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def to_host(tree):
  """Device values -> numpy, also for arrays replicated over several processes."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array)
                      else np.asarray(x), tree)


def global_batch_array(mesh: Mesh, local_batch: dict[str, np.ndarray]):
  """This process' rows -> global jax.Arrays split over the 'data' axis of the mesh."""
  sharding = data_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def any_process(flag: bool) -> bool:
  """Whether `flag` is true on any process (every process must call it): a decision to stop
  that one process makes, all must make, or the others wait for it at the next collective."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.int32(bool(flag)))))


def check_batch_size(global_batch: int) -> tuple[int, int]:
  """(per-process rows, per-device rows); a clear error when the batch does not split evenly."""
  devices, processes = jax.device_count(), jax.process_count()
  if global_batch % devices:
    raise ValueError(f'config.train.batch_size={global_batch} must be a multiple of the '
                     f'{devices} devices')
  return global_batch // processes, global_batch // devices


# --- How the train step runs: jit over the mesh, or pmap ------------------------------------

class JitDataParallel:
  """The train step jitted over the mesh with explicit shardings; one process or many.

  The state stays replicated over the mesh (NamedSharding), each batch is one global array split
  along its rows, and XLA inserts the cross-device gradient sum itself.
  """
  axis_name = None  # The step needs no named axis.

  def __init__(self, mesh: Mesh):
    self.mesh = mesh

  def compile(self, train_step):
    """train_step(state, batch, rng) -> (state, sums), state donated."""
    rep, data = replicated(self.mesh), data_sharded(self.mesh)
    return jax.jit(train_step, in_shardings=(rep, data, rep), out_shardings=(rep, rep),
                   donate_argnums=(0,))

  def place_state(self, state):
    return state  # Built and restored replicated over the mesh already.

  def place_batch(self, local_batch: dict[str, np.ndarray]):
    return global_batch_array(self.mesh, local_batch)

  def unreplicate(self, tree):
    """The step's output as checkpoints, the eval step and `to_host` take it: unchanged."""
    return tree


class PmapDataParallel:
  """The train step under `jax.pmap` over this process' devices (single process only).

  The state is stacked once per device, each batch is reshaped to [devices, rows / devices, ...],
  and the step sums gradients over `axis_name` itself. Same loss and gradient code as the jit
  path, and the same losses (tests/test_train.py).
  """
  axis_name = 'batch'

  def __init__(self):
    if jax.process_count() > 1:
      raise ValueError("config.train.parallel='pmap' is single-process; use 'jit' on several "
                       'processes')

  def compile(self, train_step):
    return jax.pmap(train_step, axis_name=self.axis_name, in_axes=(0, 0, None),
                    donate_argnums=(0,))

  def place_state(self, state):
    return pmap_replicate(to_host(state))

  def place_batch(self, local_batch: dict[str, np.ndarray]):
    return pmap_shard(local_batch)

  def unreplicate(self, tree):
    return pmap_unreplicate(tree)


def data_parallel(kind: str, mesh: Mesh) -> JitDataParallel | PmapDataParallel:
  """The strategy for `config.train.parallel`: 'jit' or 'pmap'."""
  if kind == 'jit':
    return JitDataParallel(mesh)
  if kind == 'pmap':
    return PmapDataParallel()
  raise ValueError(f"config.train.parallel must be 'jit' or 'pmap', got {kind!r}")


# --- pmap's layouts --------------------------------------------------------------------------

def pmap_shard(local_batch: dict[str, np.ndarray]):
  """[B, ...] -> [local_devices, B / local_devices, ...] numpy arrays for a pmapped step."""
  n = jax.local_device_count()
  return jax.tree.map(lambda x: x.reshape((n, x.shape[0] // n) + x.shape[1:]), local_batch)


def pmap_replicate(tree):
  """Stacks a pytree once per local device along a new leading axis (for pmap).

  (`jax.device_put_replicated` is gone since JAX 0.10; the first pmapped call moves the stacked
  host arrays to the devices and its outputs stay there.)
  """
  n = jax.local_device_count()
  return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), tree)


def pmap_unreplicate(tree):
  """The first local device's copy of a pmapped (replicated) pytree.

  Taken from that device's buffer, not as `x[0]`: in JAX 0.10 a pmap output is a NamedSharding
  array, and `x[0]` is a program over every device with an all-reduce. Unreplicating a state
  dispatched ~100 of them at once, and XLA:CPU, whose collective participants each hold a
  pool thread, deadlocked on 8 host devices (seen in 3 of 7 test runs on a busy 2-core host:
  'Expected 8 threads to join the rendezvous').
  """
  def first(x):
    if not isinstance(x, jax.Array):
      return x[0]
    return x.addressable_data(0).reshape(x.shape[1:])
  return jax.tree.map(first, tree)
