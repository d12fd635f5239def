"""``train.eval_every``: the Trainer's evaluation hook.

Every ``eval_every`` steps the trainer calls the evaluator, which draws ``train.eval_samples`` samples from the
sampling networks (EMA weights when kept) with a fixed noise seed, computes ``train.eval_metrics`` against the run's
training data (domain features; toy mode metrics for 2-D data) and returns a flat dict of numbers that the trainer
appends to metrics.jsonl as a ``kind: eval`` row. It never touches the training RNG streams (noise comes from its own
generator inside ``fork_rng``), so a run with evaluation trains exactly like one without, and resume stays exact.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch

from ..config import Config
from ..data import to_uint8
from ..data.streaming import StreamingSource
from .evaluate import Reference, Samples, evaluate, make_extractor, parse_metrics

if TYPE_CHECKING:  # pragma: no cover
    from ..train.trainer import Trainer

# Scalars only: histograms and per-class lists stay in eval.json of `ganforge eval`.
# Rows of a streamed dataset the FID/KID reference takes (data/streaming.py).
REFERENCE_ROWS = 10_000
_SKIP = ("class_histogram", "label_accuracy_per_class", "mode_histogram")


def make_evaluator(cfg: Config, built: Any) -> Callable[["Trainer"], dict[str, Any]]:
    kind = built.dataset.kind
    metrics = parse_metrics(cfg.train.eval_metrics or None, kind)
    cache: dict[str, Any] = {}
    if kind == "image":
        # Built now, not at the first evaluation: a source the evaluator cannot use (no labels for the domain
        # classifier) fails before training starts, and the classifier is trained (once, cached) up front.
        ds = built.dataset
        if isinstance(ds, StreamingSource):
            # Streamed data is too large to read whole: the reference is its first REFERENCE_ROWS rows (FID's usual
            # 10k), decoded once here.
            ds = ds.sample_rows(torch.arange(min(len(ds), REFERENCE_ROWS)))
        cache["reference"] = Reference(cfg.data.source, ds.x, ds.y)
        cache["extractor"] = make_extractor("domain", cfg.data.source, channels=ds.shape[0])

    def evaluator(trainer: "Trainer") -> dict[str, Any]:
        algo, n = trainer.algorithm, cfg.train.eval_samples
        nets = trainer.sampling_nets()
        modules = list(nets.values())
        modes = [(m, m.training) for m in modules]
        with torch.random.fork_rng(devices=[trainer.device] if trainer.device.type == "cuda" else []), \
                torch.no_grad():
            for m in modules:
                m.eval()
            try:
                gen = torch.Generator().manual_seed(cfg.train.seed + 3)
                inputs = algo.sample_inputs(n, gen, trainer.device)
                labels = algo.sample_labels(inputs)
                outs = [algo.generate({k: v[i:i + 500] for k, v in inputs.items()}, nets).float().cpu()
                        for i in range(0, n, 500)]
            finally:
                for m, flag in modes:
                    m.train(flag)
            out = torch.cat(outs)
            if kind == "vector":
                samples = Samples("vector", out, None, "training", toy=built.dataset.meta.get("toy"))
                result = evaluate(samples, metrics)
            else:
                images = to_uint8(out, trainer.value_range)
                samples = Samples("image", images, None if labels is None else labels.cpu(), "training")
                result = evaluate(samples, metrics, reference=cache["reference"], extractor=cache["extractor"])
        row = {k: v for k, v in result.items()
               if k not in _SKIP and isinstance(v, (int, float)) and k not in ("n", "n_ref")}
        # What the figures were measured on, so the report's table and `ganforge info` can say it (FID
        # depends on n and on the reference).
        return {"n": len(samples), "ref": result.get("ref", cfg.data.source),
                **({"features": result["features"]} if "features" in result else {}), **row}

    return evaluator

