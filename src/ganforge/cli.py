"""The ``ganforge`` command line. Thin: parse, call the API, and turn user errors into one clear line.

Exit codes: 0 success; 2 bad input (config, data, run directory, checkpoint) with a one-line message and no
traceback; 130 interrupted (a checkpoint was written; resume with --resume).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

EPILOG = """examples:
  ganforge list
  ganforge train dcgan-mnist --steps 2000 --out runs/dcgan
  ganforge train gan-toy --data toy:grid25 --set optim.G.lr=5e-4 --out runs/toy
  ganforge train --resume runs/dcgan --steps 4000
  ganforge train dcgan-mnist --time-limit 600 --precision bf16 --out runs/ten-minutes
  ganforge sample runs/dcgan --n 64 --out grid.png
  ganforge sample runs/dcgan --n 10000 --out samples.npz
  ganforge eval runs/dcgan --metrics fid,kid,is,pr,dc,classes
  ganforge eval samples.npz --ref mnist5k?split=test
  ganforge info runs/dcgan
"""


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(
        prog="ganforge", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Train, sample and evaluate GANs from faithful, citable recipes.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("list", help="list recipes (and with --all: data sources, objectives, algorithms, networks)",
                        description="List the recipes with their one-line description and source.")
    ls.add_argument("--all", action="store_true", help="also list data sources, objectives, algorithms, architectures")
    ls.add_argument("--long", action="store_true", help="print each recipe's whole source text (every value's provenance)")

    tr = sub.add_parser("train", help="train a recipe, or resume a run", formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Train a recipe (a name from `ganforge list` or a path to a YAML file), writing "
                                    "config, checkpoints, sample grids, metrics.jsonl and report.html to the run "
                                    "directory. Ctrl-C finishes the step, saves a checkpoint and stops.",
                        epilog="data sources: mnist5k (default), idx:DIR, folder:DIR, npz:FILE, cifar10:DIR, "
                               "toy:ring8, toy:grid25\n--set takes any dotted key of the resolved config "
                               "(see config.yaml in a run), e.g. --set optim.D.lr=1e-4 --set train.ema.enabled=true")
    tr.add_argument("recipe", nargs="?", help="recipe name or YAML path (omit with --resume)")
    tr.add_argument("--data", metavar="SRC", help="data source, e.g. mnist5k, idx:~/mnist, folder:imgs/, npz:x.npz")
    tr.add_argument("--steps", type=int, metavar="N", help="total generator steps (with --resume: the new total)")
    tr.add_argument("--seed", type=int, metavar="S", help="run seed (data order, noise, initialisation)")
    tr.add_argument("--batch-size", type=int, metavar="B", help="batch size")
    tr.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda, cuda:N")
    tr.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="training precision (default: recipe's)")
    tr.add_argument("--time-limit", type=float, metavar="SECONDS",
                    help="stop cleanly after this much training time (resume later to continue)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config key, e.g. --set optim.G.lr=1e-4 (repeatable)")
    tr.add_argument("--out", metavar="DIR", help="run directory (default: runs/RECIPE-TIMESTAMP)")
    tr.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly from its latest checkpoint")
    tr.add_argument("--force", action="store_true", help="use --out even if it holds a run (the old one is moved aside)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")

    sa = sub.add_parser("sample", help="generate samples from a trained run",
                        description="Generate samples from the newest checkpoint of a run (EMA weights if kept).")
    sa.add_argument("run_dir", help="a run directory")
    sa.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sa.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sa.add_argument("--out", required=True, metavar="FILE",
                    help=".png: a grid; .npz: arr_0 uint8 NHWC images (+ labels for conditional models)")
    sa.add_argument("--nrow", type=int, help="images per grid row (default: square, or --per-row with controls)")
    sa.add_argument("--label", type=int, metavar="K", help="conditional models: every sample of class K")
    sa.add_argument("--labels", metavar="SPEC", help="conditional models: a row per class, e.g. 0-9 or 1,3,7")
    sa.add_argument("--code", metavar="NAME=LO:HI", help="traverse an input along each row, e.g. c1=-2:2 (InfoGAN) "
                    "or z0=-4:4 (StackedGAN)")
    sa.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                    help="hold an input constant, e.g. c2=0 or z1=0 (repeatable)")
    sa.add_argument("--stage", metavar="NAME",
                    help="stacked models: vary only input NAME along each row (e.g. z0 or z1 of StackedGAN), "
                    "the label and the other stages' inputs shared along the row")
    sa.add_argument("--per-row", type=int, metavar="K", help="grid columns when --labels/--code are used (default 10)")
    sa.add_argument("--share-noise", action="store_true",
                    help="the same noise down each column: 'same style, other digit' with --labels")
    sa.add_argument("--no-ema", action="store_true", help="use the raw generator even if the run kept an EMA copy")
    sa.add_argument("--device", default="cpu", help="cpu (default) or cuda")

    ev = sub.add_parser("eval", help="measure sample quality: FID, KID, IS, precision/recall, density/coverage, "
                        "classes, toy modes", formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Evaluate a run directory (samples drawn from its newest checkpoint), a .npz of "
                                    "samples (arr_0 uint8 NHWC, optional labels), an image folder, or a data source "
                                    "against real data. Prints a table and writes eval.json (into the run directory, "
                                    "or next to the .npz, or --json-out).",
                        epilog="metrics: fid, kid (mean ± std over 100 subsets), is (10 splits), pr (precision/recall, "
                               "k=3),\n  dc (density/coverage, k=5), classes (class histogram, modes, KL to uniform, "
                               "label accuracy),\n  modes (2-D toy data: modes covered, high-quality share, reverse KL)\n"
                               "features: domain (default: ganforge's own classifier trained on the reference's "
                               "labelled data,\n  cached; no download) or inception (the FID Inception network; needs "
                               "pt_inception-2015-12-05-6726825d.pth)")
    ev.add_argument("target", help="run directory, samples .npz, image folder, or data source (e.g. mnist5k?split=test)")
    ev.add_argument("--metrics", metavar="LIST", help="comma-separated, e.g. fid,kid,is (default: all that apply)")
    ev.add_argument("--ref", metavar="SRC", help="real reference data (default: the run's training data), e.g. "
                    "mnist5k, mnist5k?split=test, npz:real.npz, folder:imgs/, toy:ring8")
    ev.add_argument("--n", type=int, metavar="N", help="samples to draw from a run (default 5000) or to use from "
                    "a file/source (default all)")
    ev.add_argument("--seed", type=int, default=0, help="noise seed for a run's samples and metric subsets (default 0)")
    ev.add_argument("--features", choices=["domain", "inception"], default="domain",
                    help="feature network for FID/KID/IS/PR/DC (default domain)")
    ev.add_argument("--inception-weights", metavar="PATH", help="local pt_inception-2015-12-05-6726825d.pth "
                    "(or set GANFORGE_INCEPTION_WEIGHTS)")
    ev.add_argument("--json-out", metavar="FILE", help="where to write eval.json")
    ev.add_argument("--no-ema", action="store_true", help="sample a run's raw generator even if it kept an EMA copy")
    ev.add_argument("--device", default="cpu", help="cpu (default) or cuda")

    inf = sub.add_parser("info", help="summarise a run directory", description="Show what a run is, how far it got, "
                         "its last metrics and where its files are.")
    inf.add_argument("run_dir")
    inf.add_argument("--json", action="store_true", help="print machine-readable JSON")
    inf.add_argument("--report", action="store_true", help="(re)write report.html")
    return p


# ----------------------------------------------------------------------------------------- commands
def _citation(source: str, limit: int = 110) -> str:
    """The citation that opens a recipe's source text (the text up to its first ': '), on one line."""
    depth, end = 0, len(source)
    for i, ch in enumerate(source):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and source.startswith(": ", i):
            end = i
            break
    head = " ".join(source[:end].split())
    return head if len(head) <= limit else head[:limit - 3].rstrip() + "..."


def cmd_list(args: argparse.Namespace) -> int:
    from .config import read_recipe, recipe_names
    names = recipe_names()
    width = max(len(n) for n in names) if names else 10
    print("recipes (ganforge train NAME):")
    for name in names:
        raw = read_recipe(name)
        print(f"  {name:<{width}}  {raw.get('description', '')}")
        print(f"  {'':<{width}}  source: {raw.get('source', '') if args.long else _citation(raw.get('source', ''))}")
    if args.all:
        from .algorithms import algorithm_names
        from .data import source_help
        from .models import architectures
        from .objectives import objective_class, objective_names
        print("\ndata sources (--data):")
        for k, h in source_help().items():
            print(f"  {k:<10} {h}")
        print("\nobjectives (--set objective.name=...):")
        for k in objective_names():
            print(f"  {k:<16} {objective_class(k).source}")
        print("\nalgorithms:", ", ".join(algorithm_names()))
        print("\nnetwork architectures (networks.X.arch):")
        for (role, arch), src in architectures().items():
            print(f"  {role:<14} {arch:<16} {src}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .api import command_line, train
    from .config import parse_set
    from .train.trainer import TrainingInterrupted
    overrides = parse_set(args.set)
    try:
        result = train(args.recipe, out=args.out, resume=args.resume, force=args.force,
                       progress=not args.no_progress, overrides=overrides, command=command_line(),
                       steps=args.steps, seed=args.seed, batch_size=args.batch_size, data=args.data,
                       device=args.device, precision=args.precision, time_limit_s=args.time_limit)
    except TrainingInterrupted as e:
        run_dir = e.checkpoint.parent.parent
        print(f"ganforge: stopped by {e.signame} at step {e.step}; checkpoint {e.checkpoint} written. "
              f"Continue with: ganforge train --resume {run_dir}", file=sys.stderr)
        return 130
    rd = result.run_dir
    last = ", ".join(f"{k}={v:.4g}" for k, v in result.last_metrics.items()
                     if isinstance(v, float) and k not in ("time",))
    stopped = " (time limit reached; --resume continues)" if result.steps < result.config.train.steps else ""
    print(f"trained {result.config.name} for {result.steps} steps{stopped} -> {rd}")
    if last:
        print(f"  last: {last}")
    samples = sorted((rd / "samples").glob("step-*.png"))
    if samples:
        print(f"  samples: {samples[-1]}")
    print(f"  metrics: {rd / 'metrics.jsonl'}\n  report:  {rd / 'report.html'}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    from .api import load
    from .data import to_uint8
    from .errors import ConfigError
    from .report import save_grid, save_scatter
    out = Path(args.out)
    if out.suffix not in (".png", ".npz"):
        raise ConfigError(f"--out must end in .png (a grid) or .npz (arrays), got '{out.name}'")
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    from .algorithms.controls import parse_code, parse_fix, parse_labels
    controls = {"label": args.label,
                "labels": parse_labels(args.labels) if args.labels else None,
                "traverse": parse_code(args.code) if args.code else None,
                "fix": parse_fix(args.fix) or None,
                "share_noise": args.share_noise or None,
                "stage": args.stage,
                "per_row": args.per_row}
    if args.per_row is not None and args.per_row < 1:
        raise ConfigError(f"--per-row must be >= 1, got {args.per_row}")
    model = load(args.run_dir, device=args.device, use_ema=not args.no_ema)
    samples, labels = model.sample_with_inputs(args.n, seed=args.seed, **controls)
    layout = controls["labels"] or controls["traverse"] or controls["stage"] or args.per_row
    nrow = args.nrow or (min(args.n, args.per_row or 10) if layout else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    if model.value_range is None:  # vector data
        if out.suffix == ".png":
            from .data.toy2d import mode_centers
            src = model.config.data.source
            ref = mode_centers(src.split(":", 1)[1])[0] if src.startswith("toy:") else None
            save_scatter(samples, out, reference=ref)
        else:
            np.savez(out, arr_0=samples.numpy(), **({"labels": labels.numpy()} if labels is not None else {}))
    else:
        images = to_uint8(samples, model.value_range)
        if out.suffix == ".png":
            save_grid(images, out, nrow=nrow, scale=max(1, 64 // images.shape[-1]))
        else:
            arrays = {"arr_0": images.permute(0, 2, 3, 1).numpy()}
            if labels is not None:
                arrays["labels"] = labels.numpy()
            tmp = out.with_name(out.stem + ".tmp.npz")
            np.savez(tmp, **arrays)
            tmp.replace(out)
    print(f"wrote {args.n} samples of {model.config.name} (step {model.step}) to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .metrics.evaluate import evaluate, format_table, is_run_dir, load_target, parse_metrics
    if args.n is not None and args.n < 2:
        raise ConfigError(f"--n must be at least 2, got {args.n}")
    target = Path(args.target).expanduser()
    samples = load_target(args.target, args.n, seed=args.seed, device=args.device, use_ema=not args.no_ema)
    metrics = parse_metrics(args.metrics, samples.kind)
    result = evaluate(samples, metrics, ref=args.ref, features=args.features,
                      inception_weights=args.inception_weights, device=args.device, seed=args.seed)
    result["metrics"] = metrics
    if args.json_out:
        out = Path(args.json_out)
    elif is_run_dir(target):
        out = target / "eval.json"
    elif target.is_file():
        out = target.with_name(target.stem + ".eval.json")
    else:
        out = Path("eval.json")
    print(format_table(result))
    from .train.checkpoint import atomic_write_text
    try:
        atomic_write_text(out, json.dumps(result, indent=1))
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror}); pass --json-out FILE somewhere writable") from None
    print(f"wrote {out}")
    return 0


def run_summary(run_dir: Path) -> dict[str, Any]:
    from .report import read_metrics
    from .train.checkpoint import latest_checkpoint, list_checkpoints
    from .train.rundir import read_run
    cfg, info, meta = read_run(run_dir)
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if r.get("kind", "train") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    ckpt = latest_checkpoint(run_dir)
    step = 0
    if ckpt is not None:
        try:
            step = json.loads((ckpt / "state.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            step = -1
    samples = sorted((run_dir / "samples").glob("step-*.png")) if (run_dir / "samples").is_dir() else []
    return {"run_dir": str(run_dir), "recipe": cfg.name, "description": cfg.description, "source": cfg.source,
            "data": cfg.data.source, "sample_shape": list(info.sample_shape), "num_classes": info.num_classes,
            "steps_done": step, "steps_total": cfg.train.steps, "checkpoint": str(ckpt) if ckpt else None,
            "checkpoints": [p.name for p in list_checkpoints(run_dir)], "command": meta.get("command"),
            "created": meta.get("created"), "device": meta.get("device"),
            "last_train": train_rows[-1] if train_rows else None, "last_eval": evals[-1] if evals else None,
            "latest_samples": str(samples[-1]) if samples else None,
            "report": str(run_dir / "report.html") if (run_dir / "report.html").is_file() else None}


def cmd_info(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    s = run_summary(run_dir)
    if args.report:
        from .report import write_report
        s["report"] = str(write_report(run_dir))
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"{s['recipe']}: {s['description']}")
    print(f"  source:     {s['source']}")
    print(f"  data:       {s['data']} (sample shape {s['sample_shape']}, {s['num_classes']} classes)")
    print(f"  progress:   step {s['steps_done']} of {s['steps_total']}; checkpoint {s['checkpoint']}")
    print(f"  launched:   {s['created']} on {s['device']}: {s['command']}")
    for key in ("last_train", "last_eval"):
        rec = s[key]
        if rec:
            vals = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()
                             if k not in ("kind", "time"))
            print(f"  {key.replace('_', ' ')}: {vals}")
    print(f"  samples:    {s['latest_samples']}")
    print(f"  report:     {s['report']}")
    return 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from .errors import GanforgeError
    try:
        return COMMANDS[args.command](args)
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:    # `ganforge list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
