"""Data-parallel training under ``torchrun``: one process per device, gradients averaged across processes.

``torchrun --nproc_per_node N -m ganforge train RECIPE ...`` starts N copies of the command. Each finds its rank in
the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins
one process group: gloo on the CPU, NCCL on CUDA GPUs (rank r uses ``cuda:LOCAL_RANK``). Then:

- **Batches.** ``train.batch_size`` stays the *global* batch, the one the optimizer sees, so a recipe means the same
  optimisation on 1 or N processes: each rank takes ``batch_size / N`` samples (it must divide), a different slice of
  the same global draw (``data.sampler.BatchSampler``: every rank draws the global batch from the shared seeded
  stream and keeps its slice), so the ranks together see exactly the batch a single process would.
- **Gradients.** After every ``backward`` of an optimizer update, the update's gradients are averaged across ranks
  (one flat all-reduce), then every rank takes the same optimizer step. This is DDP's algorithm (Li et al. 2020)
  without the ``nn.parallel.DistributedDataParallel`` wrapper, as StyleGAN3's training loop does it, because GAN
  algorithms use their networks in ways the wrapper does not follow: they call methods other than ``forward``
  (``D.forward_with_features``, feature heads) whose gradients the wrapper would silently never reduce; they freeze D
  during G's update (the wrapper's reducer then waits for gradients that never come unless it traverses the graph
  every step, ``find_unused_parameters``); they run several forwards before one backward; and gradient penalties
  differentiate twice (``create_graph``), which the wrapper documents as unsupported. Reducing after ``backward``
  works for every such step by construction; what it gives up is overlapping communication with the backward pass,
  a few milliseconds for networks of this size.
- **Initialisation.** Every rank builds its networks from the run seed, so they start equal to each other and to a
  single-process run; after the algorithm's ``setup`` hook (which runs on every rank with the shared seed) rank 0's
  weights and buffers are broadcast once more. Rank 0 keeps the single-process noise stream; rank r > 0 reseeds its
  own, so the ranks draw different noise.
- **BatchNorm.** Without ``train.sync_bn`` each rank normalises with its own batch statistics (what DDP does) and the
  running statistics are averaged across ranks after every step, so all ranks hold the same buffers. With
  ``train.sync_bn: true`` batch statistics are computed over the global batch (``nn.SyncBatchNorm`` on CUDA; on the
  CPU, which ``nn.SyncBatchNorm`` does not support, ``GlooSyncBatchNorm`` below).
- **Files.** Rank 0 alone creates the run directory and writes config, metrics, sample grids, checkpoints and the
  report; logged losses are averaged over ranks first. Checkpoints hold every rank's RNG state, so a run resumes
  exactly under the same number of processes (with another number it continues, but not bit-identically).
- **Agreement.** Signals and the time limit are agreed on every step (one tiny all-reduce), so all ranks stop at the
  same step, write one checkpoint and exit together. At each checkpoint the ranks compare a hash of their weights
  and rank 0 records them in ``state.json``; should they ever differ (a bug: every rank takes the same steps from
  the same averaged gradients), every rank raises ``RanksDiverged`` before anything is written, so the latest
  checkpoint stays one the ranks agreed on.
"""
from __future__ import annotations

import atexit
import datetime
import functools
import hashlib
import json
import os
import sys
from typing import Any, Callable, Iterable, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn

from .. import errors
from ..errors import ConfigError

T = TypeVar("T")


class RanksDiverged(RuntimeError):
    """The ranks' weights differ at a checkpoint. Not the user's doing (a RuntimeError, not a GanforgeError): the
    run stops on every rank without writing the checkpoint."""


# Collective operations wait this long for a slow rank (e.g. rank 0 evaluating or writing a checkpoint).
TIMEOUT = datetime.timedelta(minutes=30)


def launch_env() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when started by torchrun with more than one process, else None."""
    world = os.environ.get("WORLD_SIZE")
    if world is None:
        return None
    try:
        world_size = int(world)
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(f"distributed launch: RANK / WORLD_SIZE / LOCAL_RANK must be integers, got "
                          f"RANK={os.environ.get('RANK')!r} WORLD_SIZE={world!r}; launch with torchrun") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"distributed launch: RANK={rank} is not in [0, WORLD_SIZE={world_size}); "
                          "launch with torchrun")
    return (rank, world_size, local_rank) if world_size > 1 else None


class Distributed:
    """This process's place in the process group, and the collectives the Trainer needs.

    With one process (``world_size == 1``) every method is a no-op that returns its input, so the single-process
    path runs exactly the code it ran before distributed training existed."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, backend: str | None = None,
                 device: torch.device | None = None):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.backend = backend
        # Where collective buffers live: NCCL reduces CUDA tensors only, gloo CPU tensors.
        self.comm_device = device if device is not None and backend == "nccl" else torch.device("cpu")
        self.device = device

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, world_size={self.world_size}, backend={self.backend})"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world_size:
            raise ConfigError(f"train.batch_size={batch_size} is the global batch and must divide evenly over the "
                              f"{self.world_size} processes; use a multiple of {self.world_size}")

    # ------------------------------------------------------------------------------------------- primitives
    def _to_comm(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.comm_device) if t.device != self.comm_device else t

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """All-reduce ``t`` (SUM) in place, through the communication device if ``t`` is elsewhere."""
        if not self.enabled:
            return t
        buf = self._to_comm(t)
        dist.all_reduce(buf)
        if buf is not t:
            t.copy_(buf)
        return t

    def broadcast_(self, t: torch.Tensor, src: int = 0) -> torch.Tensor:
        if not self.enabled:
            return t
        buf = self._to_comm(t)
        dist.broadcast(buf, src)
        if buf is not t:
            t.copy_(buf)
        return t

    def gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Every rank's ``t`` (same shape everywhere) stacked as ``world_size x ...``, on every rank, on the CPU."""
        if not self.enabled:
            return t.unsqueeze(0).cpu()
        buf = self._to_comm(t.contiguous())
        out = [torch.empty_like(buf) for _ in range(self.world_size)]
        dist.all_gather(out, buf)
        return torch.stack([o.cpu() for o in out])

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's ``text`` on every rank (as UTF-8 bytes in two tensors: no pickling)."""
        if not self.enabled:
            return text or ""
        data = torch.tensor(list((text or "").encode()), dtype=torch.uint8) if self.is_main else None
        size = torch.tensor([len(data) if data is not None else 0], dtype=torch.long)
        self.broadcast_(size)
        buf = data if data is not None else torch.empty(int(size.item()), dtype=torch.uint8)
        if int(size.item()):
            self.broadcast_(buf)
        return bytes(buf.tolist()).decode()

    # ------------------------------------------------------------------------------------------- training
    @torch.no_grad()
    def average_gradients(self, params: Iterable[nn.Parameter], flags: torch.Tensor | None = None) -> torch.Tensor:
        """Replace each gradient by its mean over ranks (one flat all-reduce). Ranks run the same step code, so the
        same parameters have gradients on every rank; a mismatch would hang or corrupt, so the layout is checked.

        ``flags`` (a 1-D tensor, e.g. "this rank's loss is non-finite") travel in the same all-reduce and come back
        summed over ranks: a per-update agreement that costs no extra collective. Returns them (``flags`` itself, or
        an empty tensor, with one process)."""
        extra = torch.zeros(0) if flags is None else flags.detach().reshape(-1).to(torch.float32)
        if not self.enabled:
            return extra
        grads = [p.grad for p in params if p.grad is not None]
        if not grads and not extra.numel():
            return extra
        where = grads[0].device if grads else extra.device
        parts = [g.reshape(-1).to(torch.float32) for g in grads] + [extra.to(where)]
        flat = torch.cat(parts)    # a new tensor even for one part: the gradients are written back from it
        self.sum_(flat)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g).div_(self.world_size))
            offset += n
        return flat[offset:].cpu()

    def check_same_layout(self, params: Iterable[nn.Parameter], what: str) -> None:
        """Raise if ranks would all-reduce different gradient layouts (different code paths per rank)."""
        if not self.enabled:
            return
        count = sum(p.grad.numel() for p in params if p.grad is not None)
        low, high = self._max([-count, count])
        if -low != count or high != count:
            raise RuntimeError(f"distributed: ranks computed gradients for different parameters of {what} "
                               f"(this rank: {count} values); every rank must run the same step code")

    def _max(self, values: list[float]) -> list[float]:
        buf = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(buf, op=dist.ReduceOp.MAX)
        return buf.cpu().tolist()

    @torch.no_grad()
    def average_running_stats(self, layers: list[nn.Module]) -> None:
        """Average the running mean / variance of (unsynchronised) normalisation layers over ranks."""
        if not self.enabled or not layers:
            return
        bufs = [b for m in layers for b in (m.running_mean, m.running_var) if b is not None]
        if not bufs:
            return
        flat = torch.cat([b.reshape(-1).float() for b in bufs])
        self.sum_(flat).div_(self.world_size)
        offset = 0
        for b in bufs:
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()

    @torch.no_grad()
    def broadcast_modules(self, modules: Iterable[nn.Module]) -> None:
        """Rank 0's parameters and buffers on every rank."""
        if not self.enabled:
            return
        for m in modules:
            for t in list(m.parameters()) + list(m.buffers()):
                self.broadcast_(t.data)

    def mean_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Each number averaged over ranks (keys must be the same on all ranks; they are: same step code)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        vec = torch.tensor([float(torch.as_tensor(values[k]).detach().double().item()) for k in keys],
                           dtype=torch.float64)
        self.sum_(vec).div_(self.world_size)
        return {k: vec[i].clone() for i, k in enumerate(keys)}

    def agree(self, *flags: float) -> list[float]:
        """The maximum of each flag over ranks: any rank's stop request (signal, time limit) stops all of them."""
        return self._max(list(flags)) if self.enabled else list(flags)

    def fingerprints(self, tensors: dict[str, torch.Tensor]) -> list[str]:
        """sha256 of this rank's tensors (names sorted), gathered from every rank, in rank order."""
        h = hashlib.sha256()
        for name in sorted(tensors):
            t = tensors[name].detach().cpu().contiguous()
            h.update(name.encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        digest = torch.tensor(list(h.digest()), dtype=torch.uint8)
        rows = self.gather_rows(digest)
        return [bytes(r.tolist()).hex() for r in rows]

    def on_main(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | str:
        """Run ``fn`` on rank 0 only (creating the run directory, ...) and give every rank its outcome: rank 0 gets
        the result; the others get ``str(result)``. A ganforge error raised on rank 0 is raised on every rank with
        the same one-line message, so no rank is left waiting for the others."""
        if not self.enabled:
            return fn(*args, **kwargs)
        result: Any = None
        message = ""
        if self.is_main:
            try:
                result = fn(*args, **kwargs)
                message = json.dumps({"ok": str(result)})
            except BaseException as e:
                name = type(e).__name__ if isinstance(e, errors.GanforgeError) else "GanforgeError"
                text = str(e) if isinstance(e, errors.GanforgeError) else f"rank 0 failed: {type(e).__name__}: {e}"
                self.broadcast_text(json.dumps({"error": name, "message": text}))
                raise
        doc = json.loads(self.broadcast_text(message))
        if "error" in doc:
            cls = getattr(errors, doc["error"], errors.GanforgeError)
            raise cls(doc["message"])
        return result if self.is_main else doc["ok"]


SINGLE = Distributed()
_current: Distributed = SINGLE
_owned = False        # whether ganforge created the process group (and so destroys it)


def current() -> Distributed:
    """The process group this process trains in (the single-process one unless ``setup`` joined one)."""
    return _current


def setup(device: str = "auto") -> Distributed:
    """Join the process group torchrun describes in the environment (idempotent); single process otherwise.

    ``device`` is ``train.device``: gloo for ``cpu``, NCCL for ``cuda`` (rank r on ``cuda:LOCAL_RANK``); ``auto``
    picks CUDA when there is a GPU. A process group the caller already created is used as it is."""
    global _current, _owned
    if _current.enabled:
        return _current
    env = launch_env()
    if env is None and not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return SINGLE
    if not dist.is_available():
        raise ConfigError("distributed launch: this torch build has no torch.distributed; run a single process")
    if env is not None:
        rank, world_size, local_rank = env
    else:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if device.startswith("cuda:"):
        raise ConfigError(f"train.device={device} cannot be used under torchrun: rank r trains on cuda:LOCAL_RANK; "
                          "use train.device=cuda (or auto) and choose GPUs with CUDA_VISIBLE_DEVICES")
    if device == "mps":
        raise ConfigError("distributed training supports train.device=cpu (gloo) and cuda (NCCL), not mps")
    if use_cuda:
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={device} but no CUDA GPU is available here; use train.device=cpu")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"distributed launch: LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} "
                              "GPU(s) are visible; start at most that many processes per node")
        torch.cuda.set_device(local_rank)
        backend, dev = "nccl", torch.device("cuda", local_rank)
    else:
        backend, dev = "gloo", torch.device("cpu")
    if not dist.is_initialized():
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise ConfigError(f"distributed launch: {' and '.join(missing)} not set; start the processes with "
                              "torchrun --nproc_per_node N -m ganforge train ...")
        try:
            dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=TIMEOUT)
        except (RuntimeError, ValueError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"distributed launch: cannot join the {backend} process group as rank {rank} of "
                              f"{world_size} ({first[:200]})") from None
        _owned = True
        atexit.register(shutdown)
    elif dist.get_backend() != backend:
        raise ConfigError(f"the existing process group uses {dist.get_backend()}, but train.device={device} needs "
                          f"{backend}")
    _current = Distributed(rank, world_size, local_rank, backend, dev)
    return _current


def shutdown() -> None:
    """Leave the process group (if ganforge created it) and return to single-process mode."""
    global _current, _owned
    if _owned and dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:   # pragma: no cover - the group is already gone (a peer died); nothing left to release
            pass
    _owned = False
    _current = SINGLE


def session(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for an entry point: whatever process group it joined is left when it returns or raises."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        owned_before = _owned
        try:
            return fn(*args, **kwargs)
        finally:
            if _owned and not owned_before:
                shutdown()

    return wrapper


def silence_other_ranks() -> None:
    """For command-line entry points: ranks > 0 print nothing on stdout (rank 0 speaks for the run)."""
    env = launch_env()
    if env is not None and env[0] != 0:
        sys.stdout = open(os.devnull, "w")


# ---------------------------------------------------------------------------------------------- SyncBN
class _SumOverRanks(torch.autograd.Function):
    """All-reduce (SUM) with a gradient: the loss is the sum of every rank's loss, so each input's gradient is the
    sum over ranks of the incoming gradients (also an all-reduce)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:   # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:    # type: ignore[override]
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable all-reduce SUM over the default process group."""
    return _SumOverRanks.apply(tensor)


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are computed over the batches of all ranks, on any device.

    ``nn.SyncBatchNorm`` accepts CUDA (and a few accelerators') tensors only; this one reduces the per-channel sums
    with a differentiable all-reduce (``sum_over_ranks``), so it runs on gloo/CPU and the gradient
    flows through the shared statistics exactly as in ``nn.SyncBatchNorm``. Two passes (mean, then the centred sum of
    squares) keep the variance accurate. Same parameters and buffers as the layer it replaces, so checkpoints load
    into plain BatchNorm for sampling. Outside training, or with one process, it is ordinary BatchNorm."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        x = input.float()
        local = torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])])
        total = sum_over_ranks(local)
        count = total[-1]
        mean = total[:-1] / count
        centred = x - mean.view(shape)
        var = sum_over_ranks(centred.square().sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var.detach() * (count.detach() / (count.detach() - 1).clamp(min=1))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
        return y.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every BatchNorm replaced by a synchronised one sharing its parameters and buffers."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, (nn.SyncBatchNorm, GlooSyncBatchNorm)):
        out = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out


def unsynced_norm_layers(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Normalisation layers that keep per-rank running statistics (their buffers diverge without averaging)."""
    found = []
    for m in modules:
        for layer in m.modules():
            if isinstance(layer, nn.modules.batchnorm._NormBase) and layer.track_running_stats and \
                    not isinstance(layer, (nn.SyncBatchNorm, GlooSyncBatchNorm)):
                found.append(layer)
    return found


def rank_seed(seed: int, rank: int) -> int:
    """The noise seed of rank r > 0 (rank 0 keeps the single-process stream): distinct per rank, fixed per run."""
    return (seed * 1_000_003 + rank * 7_919 + 0x5EED) % (2 ** 63)


__all__ = ["Distributed", "GlooSyncBatchNorm", "RanksDiverged", "convert_sync_batchnorm", "current", "launch_env",
           "rank_seed", "session", "setup", "shutdown", "silence_other_ranks", "unsynced_norm_layers"]
