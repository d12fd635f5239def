"""Speed benchmark: ganforge's Trainer against a plain PyTorch loop of the same networks, batch and optimizer.

For dcgan-mnist (the book's DCGAN, batch 64, the largest networks in the library today), the largest other
architecture the reference loop can train (by parameter count among recipes with the plain adversarial step, the
non-saturating loss and networks other than dcgan-book and mlp; today dcgan-fashion, seed 001's UpSampling DCGAN)
and the MLP toy (gan-toy), it prints the training throughput (img/s) of

  reference   a plain PyTorch loop written below: the obvious code for the recipe's algorithm (same networks and
              initialisation, same batch, same optimizer with torch's default implementation, same lr schedule)
  fp32        ganforge's Trainer in fp32 (``Trainer.train_step``: exactly the step ``fit`` runs)
  bf16        the same with ``train.precision=bf16`` (autocast)
  auto        ``train.precision=auto`` (the default): bf16 + channels_last where bf16 is native, else fp32
  ...         other variants (``--variants``): fp32+channels_last, bf16+channels_last, fp32+compile, fp32+fused and
              fp32+foreach (``train.optimizer_impl``; fused exists for Adam/AdamW/SGD), fp16 (CUDA),
              fp32+reuse_fake (``algorithm.reuse_fake``: the G step reuses the critic's G(z))

all measured in the same run, interleaved: after a warm-up, every variant runs a chunk of about ``--chunk-seconds``
in turn, ``--rounds`` times, and the median chunk counts; ratios are against the reference's median. Then the
floating-point work of one step (``torch.utils.flop_counter.FlopCounterMode``: matmuls and convolutions, forward
and backward) as achieved GFLOP/s against this machine's measured matmul peak in the same precision.

The machine's load average is printed before and after: on a shared machine every figure is slowed, the ratios
(interleaved) much less than the absolute numbers; ``--threads 1 --clock cpu`` times each step by this process's CPU
time, which other jobs disturb far less than the wall clock (the matmul peak is timed by the same clock).

``--quality`` trains dcgan-mnist in fp32 and in bf16 for the same wall-clock budget (``--seconds`` each) and reports
the domain FID of each (features of ganforge's digit classifier, 1000 generated digits vs the 1000 held-out real
ones; the real-vs-real FID of two held-out halves is the floor). Not a test; run by hand:

    .venv/bin/python bench/speed.py                              # the three models, reference / fp32 / bf16
    .venv/bin/python bench/speed.py --threads 1 --clock cpu --rounds 7 --variants fp32,fp32+channels_last,fp32+fused
    .venv/bin/python bench/speed.py --recipes dcgan-mnist --variants fp32,fp32+compile
    .venv/bin/python bench/speed.py --quality --seconds 300
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import ganforge
from ganforge.build import build
from ganforge.config import Config, load_config, recipe_names
from ganforge.data import to_model_range
from ganforge.errors import ConfigError
from ganforge.train.trainer import Trainer, native_bf16

FIXED = ("dcgan-mnist", "gan-toy")
FP32 = {"train.precision": "fp32"}     # explicit: the config's default is auto (train/precision.py)
VARIANTS = {
    "fp32": FP32,
    "auto": {"train.precision": "auto"},
    "bf16": {"train.precision": "bf16"},
    "fp16": {"train.precision": "fp16"},
    "fp32+channels_last": {**FP32, "train.channels_last": True},
    "bf16+channels_last": {"train.precision": "bf16", "train.channels_last": True},
    "fp32+compile": {**FP32, "train.compile": True},
    "bf16+compile": {"train.precision": "bf16", "train.compile": True},
    "fp32+fused": {**FP32, "train.optimizer_impl": "fused"},
    "fp32+foreach": {**FP32, "train.optimizer_impl": "foreach"},
    "fp32+reuse_fake": {**FP32, "algorithm.reuse_fake": True},
}
REFERENCE_PARAMS = {"latent_dim", "latent_dist", "latent_std", "n_critic", "d_update", "fake_bn"}


# ----------------------------------------------------------------------------------------------- machine
CLOCK: Callable[[], float] = time.perf_counter    # --clock cpu: time.process_time


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, budget_s: float = 2.0) -> float:
    """Best GFLOP/s of square matmuls (best of 6 timings), the size grown until one product takes ~10 ms."""
    n, best = 128, 0.0
    while True:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        a @ b
        sync(device)
        t0 = CLOCK()
        a @ b
        sync(device)
        one = CLOCK() - t0
        reps = max(1, min(20, int(budget_s / 8 / max(one, 1e-6))))
        for _ in range(6):
            t0 = CLOCK()
            for _ in range(reps):
                a @ b
            sync(device)
            best = max(best, 2 * n ** 3 * reps / (CLOCK() - t0) / 1e9)
        if one > 0.01 or n >= 4096:
            return best
        n *= 2


# ----------------------------------------------------------------------------------------------- loops
class ReferenceLoop:
    """What one would write for the recipe in plain PyTorch: no framework, the obvious code.

    Data converted once to a float tensor in the model's range; indices drawn as the recipe samples (with
    replacement, or epochs of a permutation); the recipe's optimizer class with torch's default implementation; the
    discriminator update the recipe names (combined batch, separate real/fake updates, or summed losses); then a
    generator update on fresh noise, D left trainable (its weight gradients are computed and dropped, as the obvious
    code does); BCE-with-logits losses; Keras' inverse-time decay as a LambdaLR schedule."""

    def __init__(self, cfg: Config, device: torch.device):
        built = build(cfg)        # same seed: the same initial weights as ganforge's networks
        algo = built.algorithm.to(device)
        self.G, self.D = algo.nets["G"], algo.nets["D"]
        self.G.train()
        self.D.train()
        p = {**{k: algo.default_param(k) for k in REFERENCE_PARAMS}, **cfg.algorithm.params}
        self.latent_dim, self.latent_dist, self.latent_std = p["latent_dim"], p["latent_dist"], p["latent_std"]
        self.n_critic, self.d_update, self.fake_bn = p["n_critic"], p["d_update"], p["fake_bn"]
        ds = built.dataset
        self.x = (to_model_range(ds.x, algo.value_range) if ds.kind == "image" else ds.x.float()).to(device)
        self.batch, self.device, self.sampling = cfg.train.batch_size, device, cfg.data.sampling
        self.perm, self.pos = torch.randperm(len(self.x), device=device), 0
        self.opt_D, self.sched_D = self._optimizer(cfg, "D", self.D)
        self.opt_G, self.sched_G = self._optimizer(cfg, "G", self.G)
        self.ones = torch.ones(self.batch, device=device)
        self.zeros = torch.zeros(self.batch, device=device)

    @staticmethod
    def _optimizer(cfg: Config, group: str, net: torch.nn.Module) -> tuple[Any, Any]:
        o = cfg.optim[group]
        if o.name in ("adam", "adamw"):
            cls = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
            opt = cls(net.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
        elif o.name == "rmsprop":
            opt = torch.optim.RMSprop(net.parameters(), lr=o.lr, alpha=o.alpha, eps=o.eps, momentum=o.momentum,
                                      weight_decay=o.weight_decay)
        else:
            opt = torch.optim.SGD(net.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        sched = None
        if o.schedule == "inverse_time":
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t, d=o.decay: 1.0 / (1.0 + d * t))
        return opt, sched

    def noise(self) -> torch.Tensor:
        if self.latent_dist == "uniform":
            return torch.rand(self.batch, self.latent_dim, device=self.device) * 2 - 1
        return torch.randn(self.batch, self.latent_dim, device=self.device) * self.latent_std

    def real(self) -> torch.Tensor:
        if self.sampling == "replacement":
            return self.x[torch.randint(len(self.x), (self.batch,), device=self.device)]
        if self.pos + self.batch > len(self.perm):
            self.perm, self.pos = torch.randperm(len(self.x), device=self.device), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return self.x[idx]

    def _d_update(self, loss: torch.Tensor) -> None:
        self.opt_D.zero_grad()
        loss.backward()
        self.opt_D.step()
        if self.sched_D is not None:
            self.sched_D.step()

    def step(self) -> None:
        for _ in range(self.n_critic):
            real = self.real()
            if self.fake_bn == "eval":
                self.G.eval()
                fake = self.G(self.noise())
                self.G.train()
            else:
                fake = self.G(self.noise())
            if self.d_update == "combined":
                out = self.D(torch.cat([real, fake.detach()]))
                self._d_update(F.binary_cross_entropy_with_logits(out, torch.cat([self.ones, self.zeros])))
            elif self.d_update == "separate":
                self._d_update(F.binary_cross_entropy_with_logits(self.D(real), self.ones))
                self._d_update(F.binary_cross_entropy_with_logits(self.D(fake.detach()), self.zeros))
            else:
                loss = F.binary_cross_entropy_with_logits(self.D(real), self.ones) + \
                    F.binary_cross_entropy_with_logits(self.D(fake.detach()), self.zeros)
                self._d_update(loss)
        g_loss = F.binary_cross_entropy_with_logits(self.D(self.G(self.noise())), self.ones)
        self.opt_G.zero_grad()
        g_loss.backward()
        self.opt_G.step()
        if self.sched_G is not None:
            self.sched_G.step()


class GanforgeLoop:
    """ganforge's Trainer on the recipe with ``overrides``; a step is ``Trainer.train_step`` (what fit runs)."""

    def __init__(self, recipe: str, overrides: dict[str, Any], run_dir: Path):
        cfg = load_config(recipe, overrides)
        built = build(cfg)
        self.trainer = Trainer(built, run_dir, progress=False)
        self.trainer.algorithm.setup(built.dataset, self.trainer.device)   # as fit does at step 0
        self.device = self.trainer.device

    def step(self) -> None:
        self.trainer.train_step()


# ----------------------------------------------------------------------------------------------- measuring
def pick_largest(fixed: tuple[str, ...]) -> str | None:
    """The recipe with the most trained parameters among those built from other architectures than ``fixed``'s
    (so not the book DCGAN again under another loss) that the reference loop can train and whose data is here."""
    taken = {c.name for name in fixed for c in load_config(name, {}).networks.values()}
    best, size = None, -1
    for name in recipe_names():
        try:
            cfg = load_config(name, {})
            if {c.name for c in cfg.networks.values()} & taken or cfg.algorithm.name != "adversarial" \
                    or cfg.objective.name != "nonsaturating" or cfg.objective.params \
                    or not set(cfg.algorithm.params) <= REFERENCE_PARAMS or set(cfg.networks) != {"G", "D"}:
                continue
            nets = build(cfg).algorithm.nets
        except Exception:       # data not available here, or a recipe the reference loop cannot express
            continue
        n = sum(p.numel() for key in ("G", "D") for p in nets[key].parameters())
        if n > size:
            best, size = name, n
    return best


def count_flops(step: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def timed(step: Callable[[], None], n: int, device: torch.device) -> float:
    sync(device)
    t0 = CLOCK()
    for _ in range(n):
        step()
    sync(device)
    return CLOCK() - t0


def bench_recipe(recipe: str, variants: list[str], args: argparse.Namespace, device: torch.device,
                 peaks: dict[str, float], tmp: Path) -> list[dict[str, Any]]:
    base = {"train.threads": args.threads, "train.device": str(device)}
    cfg = load_config(recipe, base)
    batch = cfg.train.batch_size
    loops: dict[str, Any] = {"reference": ReferenceLoop(cfg, device)}
    skipped = []
    for v in variants:
        try:
            loops[v] = GanforgeLoop(recipe, {**base, **VARIANTS[v]}, tmp / f"{recipe}-{v}")
        except ConfigError as e:       # e.g. fp32+fused for an RMSprop recipe
            skipped.append({"recipe": recipe, "variant": v, "batch": batch, "note": f"n/a: {e}"})
    rows = {name: {"recipe": recipe, "variant": name, "batch": batch} for name in loops}

    # Warm-up: the first steps (allocations, oneDNN primitive caches, compilation), timed for the compile variants;
    # then the chunk length that takes about --chunk-seconds.
    chunk, slow = {}, set()
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for name, loop in loops.items():
        first = timed(loop.step, args.warmup, device)
        one = timed(loop.step, 1, device)
        rows[name]["warmup_s"] = round(first, 2)
        chunk[name] = max(1, min(args.max_chunk, int(args.chunk_seconds / max(one, 1e-6))))
        if one > args.slow_step_s:     # e.g. bf16 emulated on a CPU without bf16 instructions
            slow.add(name)
            rates[name].append(batch / one)
            rows[name]["note"] = f"{one:.1f} s/step: timed on 1 step in each of the first rounds only"

    # Interleaved rounds: slow drift of a shared machine's load hits every variant alike.
    for r in range(args.rounds):
        for name, loop in loops.items():
            if name in slow and r >= 1:
                continue
            n = 1 if name in slow else chunk[name]
            rates[name].append(n * batch / timed(loop.step, n, device))
    ref = statistics.median(rates["reference"])
    # FLOPs depend on the computation, not the precision or layout: counted on the reference and on fp32, and on
    # the variants that change the computation (reuse_fake skips a G forward).
    flops = {name: count_flops(loops[name].step) for name in loops
             if name in ("reference", "fp32") or "reuse_fake" in name}
    for name in loops:
        med = statistics.median(rates[name])
        if name == "auto":
            train = loops[name].trainer.cfg.train
            rows[name]["note"] = f"auto chose {train.precision}{' + channels_last' * train.channels_last}"
        rows[name].update(img_per_s=round(med, 1), vs_reference=round(med / ref, 3),
                          spread=f"{min(rates[name]):.0f}-{max(rates[name]):.0f}",
                          steps_per_chunk=1 if name in slow else chunk[name])
        count = flops.get(name, flops.get("fp32"))
        if count:
            # auto: what it chose (written into the Trainer's config at construction)
            picked = loops[name].trainer.cfg.train.precision if name == "auto" else name
            dtype = "bf16" if picked.startswith("bf16") else "fp16" if picked.startswith("fp16") else "fp32"
            achieved = count * med / batch / 1e9
            rows[name].update(gflop_per_step=round(count / 1e9, 3), gflop_per_s=round(achieved, 1),
                              pct_of_matmul_peak=round(100 * achieved / peaks[dtype], 1) if peaks.get(dtype) else None)
    return list(rows.values()) + skipped


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in columns) + " |")


# ----------------------------------------------------------------------------------------------- quality
def quality(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    from ganforge.data import load_source
    from ganforge.data.mnist5k import split_train_test
    from ganforge.metrics.domain import domain_classifier
    from ganforge.metrics.fid import fid_from_features

    clf = domain_classifier("mnist5k")
    _, test = split_train_test(load_source("mnist5k"), test_per_class=100, seed=0)
    _, real = clf.predict(test.x)
    perm = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    half = len(test) // 2
    floor = fid_from_features(real[perm[:half]].double().numpy(), real[perm[half:]].double().numpy())
    rows = []
    for precision in args.precisions.split(","):
        out = tmp / f"quality-{precision}"
        t0 = time.time()
        run = ganforge.train("dcgan-mnist", out=out, force=True, progress=False, time_limit_s=args.seconds,
                             precision=precision, overrides={"train.threads": args.threads, "train.device": args.device,
                                                             "train.checkpoint_every": 10 ** 9,
                                                             "train.sample_every": 10 ** 9})
        wall = time.time() - t0
        model = ganforge.load(run.run_dir)
        fake = model.sample(len(test), seed=123)
        probs, feats = clf.predict(fake, model.value_range)
        fid = fid_from_features(feats.double().numpy(), real.double().numpy())
        rows.append({"precision": precision, "budget_s": args.seconds, "steps": run.steps,
                     "img_per_s": round(run.steps * run.config.train.batch_size / wall, 1), "domain_fid": round(fid, 2),
                     "confident_share": round(float((probs.max(1).values >= 0.9).float().mean()), 3),
                     "real_vs_real_fid": round(floor, 2)})
    return rows


# ----------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", help="comma-separated recipes (default: dcgan-mnist, the largest, gan-toy)")
    ap.add_argument("--variants", default="fp32,bf16",
                    help=f"ganforge variants measured against the reference (default fp32,bf16): {', '.join(VARIANTS)}")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default, all cores)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up steps per variant")
    ap.add_argument("--chunk-seconds", type=float, default=1.5, help="length of one variant's turn in a round")
    ap.add_argument("--max-chunk", type=int, default=200, help="at most this many steps per turn")
    ap.add_argument("--slow-step-s", type=float, default=5.0, help="variants slower than this per step run 1 step "
                    "per round (bf16 without bf16 hardware)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: time steps by this process's CPU time (with --threads 1 on a machine shared with other "
                         "jobs it is far steadier than wall time; CPU only)")
    ap.add_argument("--quality", action="store_true", help="train dcgan-mnist per precision for --seconds; domain FID")
    ap.add_argument("--seconds", type=float, default=300.0, help="--quality: wall-clock budget per precision")
    ap.add_argument("--precisions", default="fp32,bf16", help="--quality: precisions to compare")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/speed.py: --device cuda but no CUDA GPU here")
    if args.clock == "cpu":
        if device.type != "cpu":
            sys.exit("bench/speed.py: --clock cpu times CPU work; use the wall clock on a GPU")
        global CLOCK
        CLOCK = time.process_time

    facts = {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(), "clock": args.clock,
             "cpu_capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": native_bf16(device),
             "load_avg_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    if not facts["native_bf16"]:
        print("note: no bf16 instructions (AVX512-BF16 / AMX) on this CPU: torch emulates bf16, so bf16 runs far "
              "slower than fp32 here; the bf16 rows measure that, they are not what bf16 hardware gives")
    result: dict[str, Any] = {"machine": facts}
    with tempfile.TemporaryDirectory(prefix="ganforge-speed-") as tmp_name:
        tmp = Path(tmp_name)
        if args.quality:
            rows = quality(args, tmp)
            print_table(rows, list(rows[0]))
            result["quality"] = rows
        else:
            peaks = {"fp32": matmul_peak(torch.float32, device), "bf16": matmul_peak(torch.bfloat16, device)}
            if device.type == "cuda":
                peaks["fp16"] = matmul_peak(torch.float16, device)
            print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()))
            if args.recipes:
                recipes = args.recipes.split(",")
            else:
                largest = pick_largest(FIXED)
                recipes = [FIXED[0]] + ([largest] if largest else []) + [FIXED[1]]
            variants = [v for v in args.variants.split(",") if v]
            unknown = [v for v in variants if v not in VARIANTS]
            if unknown:
                sys.exit(f"bench/speed.py: unknown variant {unknown[0]}; known: {', '.join(VARIANTS)}")
            rows = []
            for recipe in recipes:
                t0 = time.time()
                rows += bench_recipe(recipe, list(dict.fromkeys(variants)), args, device, peaks, tmp)
                print(f"  {recipe}: {time.time() - t0:.0f} s", file=sys.stderr)
            facts["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
            print(f"load average at the end: {facts['load_avg_end']}")
            print_table(rows, ["recipe", "variant", "batch", "img_per_s", "vs_reference", "spread", "gflop_per_step",
                               "gflop_per_s", "pct_of_matmul_peak", "warmup_s", "note"])
            result.update(matmul_peak=peaks, speed=rows)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
