"""Distributed training pieces without torchrun: data sharding, launch errors, SyncBN on gloo (2 spawned
processes), and that the speed options are the same math."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn as nn

import ganforge
from ganforge.data.sampler import BatchSampler
from ganforge.errors import ConfigError
from ganforge.train import distributed
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.distributed import Distributed, GlooSyncBatchNorm, convert_sync_batchnorm, launch_env
from ganforge.train.trainer import make_optimizer, optimizer_impl_kwargs


# ------------------------------------------------------------------------------------------- sharding
@pytest.mark.parametrize("mode", ["shuffle", "replacement"])
@pytest.mark.parametrize("world", [2, 3])
def test_ranks_split_the_single_process_global_batch(mode, world):
    """What the Trainer builds for rank r: batch_size / world samples, slice r of the global draw. Together the
    ranks see exactly the single-process batches (across epoch boundaries: 7 does not divide 12 x 6)."""
    global_batch, n, seed = 12, 7 * 5, 5
    single = BatchSampler(n, global_batch, mode, seed)
    ranks = [BatchSampler(n, global_batch // world, mode, seed, rank=r, world_size=world) for r in range(world)]
    stream = []
    for _ in range(9):
        want = single.next()
        parts = [s.next() for s in ranks]
        assert all(len(p) == global_batch // world for p in parts)
        assert torch.equal(torch.cat(parts), want)
        stream.append(torch.cat(parts))
    if mode == "shuffle":      # the ranks together go through each epoch once: no sample twice, none left out
        stream = torch.cat(stream)
        for epoch in range(len(stream) // n):
            assert sorted(stream[epoch * n:(epoch + 1) * n].tolist()) == list(range(n))


def test_rank_samplers_resume_from_rank0_state():
    """Checkpoints keep rank 0's sampler state only: the stream is global, so every rank continues from it."""
    ranks = [BatchSampler(50, 4, "shuffle", 3, rank=r, world_size=2) for r in range(2)]
    for _ in range(20):            # past an epoch boundary (50 / 8 per step)
        for s in ranks:
            s.next()
    state = ranks[0].state_dict()
    fresh = [BatchSampler(50, 4, "shuffle", 99, rank=r, world_size=2) for r in range(2)]
    for s in fresh:
        s.load_state_dict(state)
    for _ in range(10):
        for a, b in zip(ranks, fresh):
            assert torch.equal(a.next(), b.next())


# ------------------------------------------------------------------------------------------- launch
def test_launch_env_parsing(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert launch_env() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launch_env() is None                       # torchrun --nproc_per_node 1: a single process
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch_env() == (3, 4, 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4 is not in"):
        launch_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="must be integers"):
        launch_env()


def test_setup_errors_are_one_line_config_errors(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR and MASTER_PORT not set; start the processes with torchrun"):
        distributed.setup("cpu")
    with pytest.raises(ConfigError, match="cannot be used under torchrun"):
        distributed.setup("cuda:1")
    assert not distributed.current().enabled and not torch.distributed.is_initialized()
    with pytest.raises(ConfigError, match="must divide evenly over the 3 processes"):
        Distributed(rank=0, world_size=3).check_batch(64)


def test_single_process_collectives_are_no_ops():
    d = Distributed()
    t = torch.arange(4.0)
    assert not d.enabled and d.is_main
    assert d.sum_(t) is t and torch.equal(t, torch.arange(4.0))
    assert d.mean_values({"a": 1.0}) == {"a": 1.0} and d.agree(0.0, 1.0) == [0.0, 1.0]
    assert d.on_main(lambda x: x + 1, 1) == 2
    assert torch.equal(d.gather_rows(t), t.unsqueeze(0))
    assert len(d.fingerprints({"w": t})) == 1


# ------------------------------------------------------------------------------------------- SyncBN
def _sync_bn_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    from safetensors.torch import save_file
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        x, w, bn = _sync_bn_case()
        layer = convert_sync_batchnorm(nn.Sequential(bn), torch.device("cpu"))
        assert isinstance(layer[0], GlooSyncBatchNorm)
        part = slice(rank * 3, (rank + 1) * 3)      # ranks hold 3 and 3 of the 6 samples
        xr = x[part].clone().requires_grad_(True)
        y = layer(xr)
        (y * w[part]).sum().backward()
        save_file({"y": y.detach(), "x_grad": xr.grad, "weight_grad": layer[0].weight.grad,
                   "bias_grad": layer[0].bias.grad, "running_mean": layer[0].running_mean,
                   "running_var": layer[0].running_var}, os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        torch.distributed.destroy_process_group()


def _sync_bn_case() -> tuple[torch.Tensor, torch.Tensor, nn.BatchNorm2d]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 3, 3, generator=g) * 2 + 1
    w = torch.randn(6, 4, 3, 3, generator=g)
    bn = nn.BatchNorm2d(4, momentum=0.3)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(4, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(4, generator=g))
    return x, w, bn


def test_gloo_sync_batchnorm_equals_batchnorm_on_the_whole_batch(tmp_path):
    """Two processes with 3 samples each compute what one BatchNorm computes on all 6: outputs, input gradients,
    summed parameter gradients and running statistics."""
    from safetensors.torch import load_file
    torch.multiprocessing.spawn(_sync_bn_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    x, w, bn = _sync_bn_case()
    x = x.requires_grad_(True)
    y = bn(x)
    (y * w).sum().backward()
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach())
    torch.testing.assert_close(torch.cat([r["x_grad"] for r in ranks]), x.grad)
    torch.testing.assert_close(ranks[0]["weight_grad"] + ranks[1]["weight_grad"], bn.weight.grad)
    torch.testing.assert_close(ranks[0]["bias_grad"] + ranks[1]["bias_grad"], bn.bias.grad)
    for r in ranks:
        torch.testing.assert_close(r["running_mean"], bn.running_mean)
        torch.testing.assert_close(r["running_var"], bn.running_var)


def test_convert_sync_batchnorm_keeps_parameters_and_checkpoint_keys():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, momentum=0.01, eps=1e-3), nn.ReLU(),
                        nn.Sequential(nn.BatchNorm2d(4)))
    keys, weight = list(net.state_dict()), net[1].weight
    out = convert_sync_batchnorm(net, torch.device("cpu"))
    assert out is net and isinstance(net[1], GlooSyncBatchNorm) and isinstance(net[3][0], GlooSyncBatchNorm)
    assert net[1].weight is weight and net[1].eps == 1e-3 and net[1].momentum == 0.01
    assert list(net.state_dict()) == keys
    x = torch.randn(5, 1, 6, 6)          # without a process group it is plain BatchNorm
    ref = nn.BatchNorm2d(4, momentum=0.01, eps=1e-3)
    ref.load_state_dict(net[1].state_dict())
    h = net[0](x)
    torch.testing.assert_close(net[1](h), ref(h))


# ------------------------------------------------------------------------------------------- speed options
def test_optimizer_implementations():
    assert optimizer_impl_kwargs("adam", "auto", "cuda") == {"fused": True}
    assert optimizer_impl_kwargs("adam", "auto", "cpu") == {}        # CPU runs keep torch's default numbers
    assert optimizer_impl_kwargs("rmsprop", "auto", "cuda") == {}
    assert optimizer_impl_kwargs("sgd", "foreach") == {"foreach": True}
    assert optimizer_impl_kwargs("adamw", "for-loop") == {"foreach": False}
    with pytest.raises(ConfigError, match="no fused rmsprop"):
        optimizer_impl_kwargs("rmsprop", "fused")
    from ganforge.config import OptimConfig
    for name in ("adam", "adamw", "sgd", "rmsprop"):
        results = {}
        for impl in ("for-loop", "foreach", "auto") + (("fused",) if name != "rmsprop" else ()):
            torch.manual_seed(0)
            p = nn.Parameter(torch.randn(50))
            opt = make_optimizer(OptimConfig(name=name, lr=1e-2, momentum=0.5 if name != "adam" else 0.0,
                                             weight_decay=0.01), [p], impl)
            for _ in range(5):
                opt.zero_grad()
                (p ** 3).sum().backward()
                opt.step()
            results[impl] = p.detach()
        assert not torch.allclose(results["for-loop"], torch.randn(50, generator=torch.Generator().manual_seed(0)))
        for impl, value in results.items():
            torch.testing.assert_close(value, results["for-loop"], msg=f"{name} {impl}")


SMALL_DCGAN = {"networks.G.filters": [8, 8, 4], "networks.D.filters": [4, 8, 8, 8], "train.batch_size": 8,
               "train.log_every": 2, "train.sample_every": 100, "train.checkpoint_every": 100, "train.grid_size": 4,
               "train.threads": 1}


def test_channels_last_trains_the_same_math(tmp_path):
    """channels_last changes memory layout and conv kernels, not the result: two steps agree to float rounding.
    SGD keeps rounding differences at rounding size (RMSprop / Adam turn the float noise in the exactly-zero gradients
    of biases before BatchNorm into lr-sized steps of random sign). With dropout, channels_last draws the masks in
    memory order, i.e. other masks (the same distribution, other numbers), so dcgan-fashion runs without it."""
    sgd = {"optim.G.name": "sgd", "optim.D.name": "sgd", "optim.G.lr": 0.01, "optim.D.lr": 0.01}
    for recipe, extra in (("dcgan-mnist", {}), ("dcgan-fashion", {"networks.D.dropout": 0.0})):
        weights = []
        for layout in (False, True):
            run = ganforge.train(recipe, steps=2, out=tmp_path / f"{recipe}-{layout}", progress=False,
                                 overrides={**SMALL_DCGAN, **sgd, **extra, "train.channels_last": layout})
            weights.append(read_checkpoint(latest_checkpoint(run.run_dir))[0])
        for k in weights[0]:
            torch.testing.assert_close(weights[0][k], weights[1][k], rtol=1e-4, atol=1e-6, msg=f"{recipe} {k}")
