"""The ``ganforge`` command line. Thin: parse, call the API, and turn user errors into one clear line.

Exit codes: 0 success; 1 an internal error (a bug: one line, the full trace in RUN/error.log or a temporary file);
2 bad input (config, data, run directory, checkpoint) with a one-line message and no traceback; 3 training diverged
(a NaN / Inf loss or gradient; nothing saved, the last good checkpoint kept); 130 interrupted (a checkpoint was
written; resume with --resume).
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
  ganforge train dcgan-mnist --print-config
  ganforge train dcgan-mnist --steps 2000 --out runs/dcgan
  ganforge train gan-toy --data toy:grid25 --set optim.G.lr=5e-4 --out runs/toy
  ganforge train --resume runs/dcgan --steps 4000
  ganforge train dcgan-mnist --time-limit 600 --precision bf16 --out runs/ten-minutes
  ganforge sample runs/dcgan --n 64 --out grid.png
  ganforge sample runs/dcgan --n 10000 --out samples.npz
  ganforge sample runs/cgan --labels 0-9 --out classes.png
  ganforge eval runs/dcgan --metrics fid,kid,is,pr,dc,classes
  ganforge eval samples.npz --ref mnist5k?split=test
  ganforge train dcgan-mnist --data my_images/ --out runs/mine
  ganforge info runs/dcgan
  ganforge translate runs/pix2pix --input my_sketches/ --out translated/
  ganforge translate runs/cyclegan --input test.npz --out out.npz --direction BtoA
  ganforge encode runs/bigan --input digits/ --out codes.npz
"""


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(
        prog="ganforge", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Train, sample and evaluate GANs from faithful, citable recipes.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("list", help="list recipes (and with --all: data sources, objectives, algorithms, networks)",
                        description="List the recipes by family, each with its description and the books or "
                                    "papers it follows.")
    ls.add_argument("--all", action="store_true", help="also list data sources, objectives, algorithms, architectures")
    ls.add_argument("--long", action="store_true", help="add each recipe's whole source text (where every value "
                    "comes from)")

    tr = sub.add_parser("train", help="train a recipe, or resume a run", formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Train a recipe (a name from `ganforge list` or a path to a YAML file), writing "
                                    "config, checkpoints, sample grids, metrics.jsonl and report.html to the run "
                                    "directory. Ctrl-C finishes the step, saves a checkpoint and stops.",
                        epilog="data sources: mnist5k (default), idx:DIR, folder:DIR, npz:FILE, cifar10:DIR, "
                               "toy:ring8, toy:grid25,\n  or a bare path: a folder of images, a .npz, IDX files\n--set takes any dotted key of the resolved config "
                               "(see config.yaml in a run), e.g. --set optim.D.lr=1e-4 --set train.ema.enabled=true")
    tr.add_argument("recipe", nargs="?", help="recipe name or YAML path (omit with --resume)")
    tr.add_argument("--print-config", action="store_true",
                    help="print the resolved config (every settable key, YAML; the other flags applied) and exit "
                         "without loading data or writing anything")
    tr.add_argument("--data", metavar="SRC", help="data source, e.g. mnist5k, idx:~/mnist, folder:imgs/, npz:x.npz, "
                    "or a bare path (imgs/, x.npz, ~/mnist): its kind is detected")
    tr.add_argument("--steps", type=int, metavar="N", help="total generator steps (with --resume: the new total)")
    tr.add_argument("--seed", type=int, metavar="S", help="run seed (data order, noise, initialisation)")
    tr.add_argument("--batch-size", type=int, metavar="B", help="batch size")
    tr.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda, cuda:N")
    tr.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                    help="training precision (default: the recipe's, else auto: bf16 + channels_last where the "
                         "hardware does bf16 natively and the family is measured in it, fp32 elsewhere)")
    tr.add_argument("--time-limit", type=float, metavar="SECONDS",
                    help="stop cleanly after this much training time (resume later to continue); wall time, or CPU "
                         "time with --set train.time_limit_clock=cpu")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config key, e.g. --set optim.G.lr=1e-4 (repeatable)")
    tr.add_argument("--out", metavar="DIR", help="run directory (default: runs/RECIPE-TIMESTAMP)")
    tr.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly from its latest checkpoint")
    tr.add_argument("--force", action="store_true", help="use --out even if it holds a run (the old one is moved aside)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar: one plain line per train.log_every "
                    "steps instead (step/total, losses, steps/s, elapsed, ETA; also what a non-terminal stderr gets)")
    tr.add_argument("--init-from", metavar="RUN[:STEP]", help="a new run starting from another run's network weights "
                    "and EMA copy (its latest checkpoint, or STEP's), with fresh optimizers at step 0")

    sa = sub.add_parser("sample", help="generate samples from a trained run",
                        description="Generate samples from the newest checkpoint of a run (EMA weights if kept).")
    sa.add_argument("run_dir", help="a run directory")
    sa.add_argument("--n", type=int, help="number of samples (default 64; with --labels: classes x --per-row, a row "
                    "per class; with --code/--stage: 10 rows of --per-row); with those, --n must fill whole rows")
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
    sa.add_argument("--truncation", type=float, metavar="PSI", help="Gaussian latents: resample every z component "
                    "beyond PSI std (BigGAN's truncation trick; lower: typical samples, less variety); StyleGAN: "
                    "w_avg + PSI (w - w_avg) in W (e.g. 0.7)")
    sa.add_argument("--truncation-cutoff", type=int, metavar="K", help="StyleGAN: truncate the style layers below K "
                    "only (default the recipe's, the paper's 8)")
    sa.add_argument("--mix", type=int, nargs="?", const=5, metavar="K", help="StyleGAN: a style-mixing grid of "
                    "(K+1) x (K+1) (K default 5): coarse styles from the left column, fine from the top row")
    sa.add_argument("--mix-cutoff", type=int, metavar="K", help="StyleGAN --mix: the layers below K take the row's "
                    "styles (default 4: 4x4 and 8x8, the paper's coarse styles)")
    sa.add_argument("--noise-seed", type=int, metavar="S", help="StyleGAN: one fixed per-layer noise image from seed "
                    "S for every sample")
    sa.add_argument("--interpolate", metavar="A:B", help="a latent walk from seed A's z to seed B's (slerp for "
                    "Gaussian z): a row of --n frames (default 10), or a row per class with --labels")
    sa.add_argument("--text", action="append", default=[], metavar="CAPTION", help="text-to-image models: a row "
                    "per caption, e.g. --text \"a thin three\" (repeatable; words the model never saw are <unk>)")
    sa.add_argument("--text-file", metavar="FILE", help="text-to-image models: a row per caption, one caption a line")
    sa.add_argument("--interpolate-text", metavar="A:B", help="text-to-image models: each row walks from caption A "
                    "to caption B across its --per-row columns (GAN-INT), the noise fixed along the row")
    sa.add_argument("--no-ema", action="store_true", help="use the raw generator even if the run kept an EMA copy")
    sa.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    sa.add_argument("--checkpoint", metavar="STEP|PATH", help="sample this checkpoint (a step the run kept, see "
                    "`ganforge info`, or a checkpoint directory) instead of the newest")

    ev = sub.add_parser("eval", help="measure sample quality: FID, KID, IS, precision/recall, density/coverage, "
                        "classes, toy modes", formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Evaluate a run directory (samples drawn from its newest checkpoint), a .npz of "
                                    "samples (arr_0 uint8 NHWC, optional labels), an image folder, or a data source "
                                    "against real data, and print a table. Where the numbers are kept: for a run "
                                    "directory, in RUN/evals/step-XXXXXXXX.json and RUN/eval.json, and its "
                                    "report.html is rebuilt (ganforge info shows the latest); for a .npz, in "
                                    "FILE.eval.json beside it; for a folder or a data source nowhere unless "
                                    "--json-out FILE is given. The first evaluation against a new data set trains "
                                    "its domain classifier (a minute or more on a CPU; cached).",
                        epilog="metrics: fid, kid (mean ± std over 100 subsets), is (10 splits), pr (precision/recall, "
                               "k=3),\n  dc (density/coverage, k=5), classes (class histogram, modes, KL to uniform, "
                               "label accuracy),\n  modes (2-D toy data: modes covered, high-quality share, reverse KL),\n"
                               "  l1, psnr, ssim (paired: each sample against its own counterpart in --ref, same order "
                               "and shape;\n  a reference with a target field, e.g. aligned:DIR?split=test, is compared "
                               "on it)\n"
                               "features: domain (default: ganforge's own classifier trained on the reference's "
                               "labelled data,\n  cached; no download; the table gives its held-out accuracy) or "
                               "inception (the FID Inception\n  network; needs pt_inception-2015-12-05-6726825d.pth)\n"
                               "the table: 3 significant digits; KID x10^3")
    ev.add_argument("target", help="run directory, samples .npz, image folder, or data source (e.g. mnist5k?split=test)")
    ev.add_argument("--metrics", metavar="LIST", help="comma-separated, e.g. fid,kid,is or psnr,ssim,l1 (default: "
                    "fid,kid,is,pr,dc,classes for images, modes for 2-D points)")
    ev.add_argument("--ref", metavar="SRC", help="real reference data (default: the run's training data), e.g. "
                    "mnist5k, mnist5k?split=test, real.npz, imgs/, toy:ring8")
    ev.add_argument("--n", type=int, metavar="N", help="samples to draw from a run (default 5000) or to use from "
                    "a file/source (default all)")
    ev.add_argument("--seed", type=int, default=0, help="noise seed for a run's samples and metric subsets (default 0)")
    ev.add_argument("--features", choices=["domain", "inception"], default="domain",
                    help="feature network for FID/KID/IS/PR/DC (default domain)")
    ev.add_argument("--inception-weights", metavar="PATH", help="local pt_inception-2015-12-05-6726825d.pth "
                    "(or set GANFORGE_INCEPTION_WEIGHTS)")
    ev.add_argument("--json-out", metavar="FILE", help="also write the result as JSON to FILE (the only way to keep "
                    "the numbers of a folder or data source; a run directory keeps its own history anyway)")
    ev.add_argument("--no-ema", action="store_true", help="sample a run's raw generator even if it kept an EMA copy")
    ev.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ev.add_argument("--checkpoint", metavar="STEP|PATH", help="a run directory: draw the samples from this "
                    "checkpoint (a step the run kept, or a checkpoint directory) instead of the newest")
    tr = ev.add_argument_group("translation runs (pix2pix, CycleGAN, StarGAN, SRGAN ...)",
                               "A translation run is evaluated on held-out images it never trained on: paired l1, "
                               "psnr, ssim against their true counterparts (beside the 'copy the input' or bicubic "
                               "baseline), content (a classifier of the target domain reads the outputs against the "
                               "inputs' labels), and fid/kid/pr/dc against the target domain's real images (--ref; "
                               "derived from the run where it can be). --n limits the inputs (default all).")
    tr.add_argument("--input", metavar="SRC", help="held-out inputs (default: the run's data.held_out), e.g. "
                    "'aligned:DIR?split=val' or 'mnist5k?split=test&domain=edges&paired=1'")
    tr.add_argument("--direction", choices=["AtoB", "BtoA"], help="two-domain translators: which way (default AtoB)")
    tr.add_argument("--to", metavar="DOMAIN", help="multi-domain translators: the target domain (name or index)")
    tr.add_argument("--from", dest="from_domain", metavar="DOMAIN", help="ComboGAN-style translators: the inputs' "
                    "domain (default the first)")
    tr.add_argument("--attrs", metavar="A,B", help="attribute translators: the target attributes")

    tl = sub.add_parser("translate", help="translate your images with a trained image-to-image run",
                        description="Map images through a translation model (pix2pix, CycleGAN, StarGAN, SRGAN ...): "
                                    "an image file, a folder of images (same-named PNGs out) or a .npz (arr_0 uint8 "
                                    "NHWC; an npz out in the same order). Images of another size are resized to the "
                                    "model's input and the outputs back to the same scale, except for fully "
                                    "convolutional super-resolution models, which upscale each image at its own "
                                    "size; channels are adapted (grey <-> RGB); each is said in one line.")
    tl.add_argument("run_dir", help="a run directory of a translation model")
    tl.add_argument("--input", required=True, metavar="FILE|DIR|NPZ", help="the images to translate")
    tl.add_argument("--out", required=True, metavar="FILE|DIR|NPZ", help="a .png (one input image), a folder, or a "
                    ".npz (arr_0 uint8 N x H x W x C)")
    tl.add_argument("--direction", choices=["AtoB", "BtoA"], help="two-way models (CycleGAN, UNIT ...): which way "
                    "(default AtoB)")
    tl.add_argument("--to", metavar="DOMAIN", help="multi-domain models (StarGAN, ComboGAN): the target domain")
    tl.add_argument("--from", dest="from_domain", metavar="DOMAIN", help="models with an encoder per domain "
                    "(ComboGAN, UNIT, XGAN): the inputs' domain (default the first)")
    tl.add_argument("--attrs", metavar="A,B,...", help="attribute models (StarGAN on CelebA): the attributes the "
                    "output should have, e.g. Black_Hair,Young")
    tl.add_argument("--seed", type=int, default=0, help="seed of the randomness a model keeps at test time, e.g. "
                    "pix2pix's dropout (default 0)")
    tl.add_argument("--batch-size", type=int, default=64, metavar="B", help="images per forward pass (default 64)")
    tl.add_argument("--no-ema", action="store_true", help="use the raw networks even if the run kept an EMA copy")
    tl.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    tl.add_argument("--checkpoint", metavar="STEP|PATH", help="translate with this checkpoint (a step the run kept, "
                    "or a checkpoint directory) instead of the newest")

    en = sub.add_parser("encode", help="encode your images into a trained encoder's codes (BiGAN, ALI, VAE-GAN)",
                        description="Map images to their codes E(x) with a run of a family that learns an encoder "
                                    "(BiGAN, ALI, VAE-GAN, VAE: a stochastic encoder's mean): an image file, a folder of "
                                    "images or a "
                                    ".npz (arr_0 uint8 NHWC), resized and channel-adapted as for translate. Writes a "
                                    ".npz: arr_0 float32 N x latent_dim in the inputs' order, names the inputs' names.")
    en.add_argument("run_dir", help="a run directory of an encoder family")
    en.add_argument("--input", required=True, metavar="FILE|DIR|NPZ", help="the images to encode")
    en.add_argument("--out", required=True, metavar="NPZ", help="a .npz for the codes")
    en.add_argument("--batch-size", type=int, default=256, metavar="B", help="images per forward pass (default 256)")
    en.add_argument("--no-ema", action="store_true", help="use the raw networks even if the run kept an EMA copy")
    en.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    en.add_argument("--checkpoint", metavar="STEP|PATH", help="encode with this checkpoint (a step the run kept, "
                    "or a checkpoint directory) instead of the newest")

    inf = sub.add_parser("info", help="summarise a run directory", description="Show what a run is, how far it got, "
                         "its last metrics and where its files are.")
    inf.add_argument("run_dir")
    inf.add_argument("--json", action="store_true", help="print machine-readable JSON")
    inf.add_argument("--report", action="store_true", help="(re)write report.html")
    inf.add_argument("--checkpoint", metavar="STEP|PATH", help="show this checkpoint (a step the run kept, or a "
                     "checkpoint directory) as the run's progress instead of the newest")

    da = sub.add_parser("data", help="show what a data source yields, without training",
                        description="Load a data source (a name such as mnist5k?split=test, PREFIX:ARG, or a bare "
                                    "folder / .npz / IDX path) and show what it yields: the sample count, the batch "
                                    "keys, each key's per-sample shape, dtype and value range, the classes with "
                                    "their counts, attributes, domains, vocabulary size and the splits the source "
                                    "accepts. Nothing is trained or written, except the --grid PNG.")
    da.add_argument("source", help="data source, e.g. mnist5k, mnist5k?split=test, toy:ring8, imgs/, x.npz")
    da.add_argument("--grid", metavar="FILE.png", help="also write a PNG grid of the first --n samples: paired data "
                    "shows image | target per sample, super-resolution data lowres (upscaled, nearest) | image; "
                    "2-D points a scatter plot")
    da.add_argument("--n", type=int, metavar="N", help="samples in the grid (default 64 images; 2-D points: all)")
    da.add_argument("--json", action="store_true", help="print machine-readable JSON instead of the text summary")
    return p


# ----------------------------------------------------------------------------------------- commands
LIST_WIDTH = 100   # `ganforge list` fits a 100-column terminal


def _citation(raw: dict[str, Any], limit: int = 200) -> str:
    """A recipe's one-line citation: its ``citation`` field, else (recipes written before that field) the text
    that opens its source, up to the first top-level ': ', with the seed numbers replaced by the texts' names."""
    from .report.citations import name_sources
    text = str(raw.get("citation") or "")
    if not text:
        source = str(raw.get("source") or "")
        depth, end = 0, len(source)
        for i, ch in enumerate(source):
            depth += (ch in "([") - (ch in ")]")
            if depth == 0 and source.startswith(": ", i):
                end = i
                break
        text = source[:end]
    head = " ".join(name_sources(text).split())
    return head if len(head) <= limit else head[:limit - 3].rstrip() + "..."


def _wrapped(text: str, indent: int, first: str = "", width: int = LIST_WIDTH) -> list[str]:
    import textwrap
    return textwrap.wrap(" ".join(text.split()), width=width, initial_indent=" " * indent + first,
                         subsequent_indent=" " * (indent + len(first)), break_on_hyphens=False,
                         break_long_words=True) or [" " * indent + first.rstrip()]


def cmd_list(args: argparse.Namespace) -> int:
    from .config import read_recipe, recipe_names
    from .report.citations import FAMILIES, LEGEND, name_sources, recipe_family
    raws = {name: read_recipe(name) for name in recipe_names()}
    width = max((len(n) for n in raws), default=10)
    indent = 2 + width + 2
    groups: dict[str, list[str]] = {}
    for name, raw in raws.items():
        groups.setdefault(recipe_family(raw), []).append(name)
    titles = dict(FAMILIES)
    lines = ["recipes (ganforge train NAME), by family; `ganforge list --long` adds where each setting comes from"]
    for key in [k for k, _ in FAMILIES] + sorted(k for k in groups if k not in titles):
        if key not in groups:
            continue
        lines += ["", titles.get(key, key.capitalize())]
        for name in groups[key]:
            raw = raws[name]
            desc = _wrapped(str(raw.get("description", "")), indent)
            lines.append(f"  {name:<{width}}  " + desc[0].lstrip())
            lines += desc[1:]
            lines += _wrapped(_citation(raw), indent, "cites: ")
            if args.long:
                lines += _wrapped(name_sources(str(raw.get("source", ""))), indent, "source: ")
    if args.all:
        from .algorithms import algorithm_names
        from .data import source_help
        from .models import architectures
        from .objectives import objective_class, objective_names
        lines += ["", "data sources (--data; a bare folder, .npz or IDX path is detected too):"]
        helps = source_help()
        sw = max((len(k) for k in helps), default=10)     # the longest source name sets the column
        for k, h in helps.items():
            body = _wrapped(h, sw + 3)
            lines += [f"  {k:<{sw}} " + body[0].lstrip()] + body[1:]
        lines += ["", "objectives (--set objective.name=...):"]
        for k in objective_names():
            body = _wrapped(name_sources(objective_class(k).source), 19)
            lines += [f"  {k:<16} " + body[0].lstrip()] + body[1:]
        lines += ["", *_wrapped("algorithms: " + ", ".join(algorithm_names()), 0)]
        lines += ["", "network architectures (networks.X.arch):"]
        archs = architectures()
        rw = max((len(r) for r, _ in archs), default=8)
        aw = max((len(a) for _, a in archs), default=8)
        for (role, arch), src in archs.items():
            body = _wrapped(name_sources(src), 2 + rw + 1 + aw + 2)
            lines += [f"  {role:<{rw}} {arch:<{aw}}  " + body[0].lstrip()] + body[1:]
        lines += ["", "texts named above:"] + [w for entry in LEGEND for w in _wrapped(entry, 2)]
    print("\n".join(lines))
    return 0


def _yaml_value(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_yaml_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _yaml_value(x) for k, x in v.items()}
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


def _with_defaults(cls: Any, given: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A component's parameters: those the recipe gives, then every other one the constructor takes with its
    default (required ones are filled in by the library from the data and the algorithm)."""
    import inspect
    from .config import signature_params
    defaults = {k: _yaml_value(p.default) for k, p in signature_params(cls, skip).items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **given}


def resolved_config(cfg: Any) -> dict[str, Any]:
    """``cfg.to_dict()`` (what a run's config.yaml holds) with every algorithm, objective and network parameter
    the recipe leaves at its default written out, after checking the given ones against the constructors."""
    from .algorithms import algorithm_class
    from .build import SPECTRAL_NORM_KEYS
    from .config import check_params, signature_params
    from .models import CONTEXT_KEYS, network_class
    from .objectives import objective_class
    out = cfg.to_dict()
    skip = ("nets", "objective", "data")
    algo = algorithm_class(cfg.algorithm.name)
    check_params(algo, cfg.algorithm.params, "algorithm", skip=skip)
    out["algorithm"] = {"name": cfg.algorithm.name, **_with_defaults(algo, out["algorithm"], skip)}
    obj = objective_class(cfg.objective.name)
    check_params(obj, cfg.objective.params, "objective")
    out["objective"] = {"name": cfg.objective.name, **_with_defaults(obj, out["objective"])}
    for key, comp in cfg.networks.items():
        role = algo.roles.get(key)
        if role is None:
            continue   # build() names the unknown network when training; here it is shown as given
        net = network_class(role, comp.name, f"networks.{key}")
        own = {k: v for k, v in comp.params.items() if k not in SPECTRAL_NORM_KEYS or k in signature_params(net)}
        check_params(net, own, f"networks.{key}", skip=CONTEXT_KEYS)
        params = _with_defaults(net, out["networks"][key], CONTEXT_KEYS)
        if "spectral_norm" not in signature_params(net):
            params.setdefault("spectral_norm", False)   # the builder's switch, available on every network
        out["networks"][key] = {"arch": comp.name, **params}
    return out


def print_config(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """``ganforge train ... --print-config``: the config the same command would train, as YAML."""
    from .api import collect_overrides
    from .config import apply_overrides, build_config, dump_yaml, load_config
    from .errors import ConfigError
    changes = collect_overrides(overrides, {"steps": args.steps, "seed": args.seed, "batch_size": args.batch_size,
                                            "data": args.data, "device": args.device, "precision": args.precision,
                                            "time_limit_s": args.time_limit})
    if args.resume:
        from .train.rundir import read_run
        cfg = build_config(apply_overrides(read_run(Path(args.resume))[0].to_dict(), changes))
        what = f"--resume {args.resume}"
    elif args.recipe:
        cfg = load_config(args.recipe, changes)
        what = args.recipe
    else:
        raise ConfigError("--print-config needs a recipe (see `ganforge list`) or --resume RUN_DIR")
    print(f"# resolved config of `ganforge train {what}` with the given flags: every key below can be set with\n"
          "# --set KEY=VALUE, and this file trains as it is: ganforge train FILE.yaml")
    print(dump_yaml(resolved_config(cfg)), end="")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import warnings
    from .api import command_line, train
    from .config import parse_set
    from .train.trainer import TrainingInterrupted
    overrides = parse_set(args.set)
    if args.print_config:   # what would be trained, and stop: no data loaded, no directory touched
        return print_config(args, overrides)

    def one_line(message: Warning | str, category: type, filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:   # a user sees the warning, not the source line that raised it
        print(f"ganforge: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():   # restores the caller's warning display afterwards
            warnings.showwarning = one_line
            result = train(args.recipe, out=args.out, resume=args.resume, force=args.force,
                           progress="log" if args.no_progress else True, overrides=overrides,
                           command=command_line(), init_from=args.init_from,
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
    from .cli_checks import check_sample_args
    check_sample_args(args.n, args.nrow, args.per_row, Path(args.out))   # before loading, allocating or writing
    out = Path(args.out)
    if out.suffix not in (".png", ".npz"):
        raise ConfigError(f"--out must end in .png (a grid) or .npz (arrays), got '{out.name}'")
    if args.n is not None and args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    from .algorithms.controls import parse_code, parse_fix, parse_labels
    from .algorithms.latent_walk import parse_interpolate
    import math
    if args.truncation is not None and not math.isfinite(args.truncation):   # > 0 for Gaussian z: latent_walk.py
        raise ConfigError(f"--truncation must be a finite number (e.g. 0.5), got {args.truncation}")
    if args.mix is not None and (args.labels or args.code or args.stage or args.interpolate):
        raise ConfigError("--mix makes its own grid; leave out --labels, --code, --stage and --interpolate")
    if args.mix is not None and not 1 <= args.mix <= 30:
        raise ConfigError(f"--mix K takes 1 to 30 sources per side, got {args.mix}")
    walk = parse_interpolate(args.interpolate) if args.interpolate is not None else None
    controls = {"label": args.label,
                "labels": parse_labels(args.labels) if args.labels else None,
                "traverse": parse_code(args.code) if args.code else None,
                "fix": parse_fix(args.fix) or None,
                "share_noise": args.share_noise or None,
                "stage": args.stage,
                "per_row": args.per_row,
                **caption_controls(args)}
    if args.per_row is not None and args.per_row < 1:
        raise ConfigError(f"--per-row must be >= 1, got {args.per_row}")
    one_walk = walk is not None and not (controls["labels"] or args.per_row)     # a single row of frames
    n = sample_count(WALK_FRAMES if one_walk and args.n is None else args.n, controls, args)
    if args.mix is not None and args.n is None:
        from .algorithms.latent_walk import mix_grid_size
        n = mix_grid_size(args.mix)
    w_space = {"truncation_cutoff": args.truncation_cutoff, "mix": args.mix, "mix_cutoff": args.mix_cutoff,
               "noise_seed": args.noise_seed}
    model = load(args.run_dir, device=args.device, use_ema=not args.no_ema, step=args.checkpoint)
    samples, labels = model.sample_with_inputs(n, seed=args.seed, truncation=args.truncation, interpolate=walk,
                                               **w_space, **controls)
    layout = (controls["labels"] or controls["traverse"] or controls["stage"] or controls["texts"]
              or controls["interpolate_text"] or args.per_row)
    nrow = args.nrow or (n if one_walk else min(n, args.per_row or 10) if layout else None)
    if args.mix is not None:   # the (K+1) x (K+1) mixing grid: a header column and K columns of mixes
        nrow = args.nrow or args.mix + 1
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
    print(f"wrote {n} samples of {model.config.name} (step {model.step}) to {out}")
    return 0


DEFAULT_SAMPLES = 64
WALK_FRAMES = 10      # frames of an --interpolate row when --n is not given
TRAVERSAL_ROWS = 10   # rows of a --code / --stage grid when --n is not given: one per noise draw


def caption_controls(args: argparse.Namespace) -> dict[str, Any]:
    """``texts`` (--text, then --text-file's non-blank lines) and ``interpolate_text`` (--interpolate-text A:B) for
    text-to-image models, None where not given; an unreadable or empty file, or A:B without both captions, is one line."""
    from .errors import ConfigError
    texts = list(args.text)
    if args.text_file is not None:
        try:
            lines = Path(args.text_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"--text-file {args.text_file}: cannot read it ({type(err).__name__}: "
                              f"{getattr(err, 'strerror', None) or err}); give a UTF-8 text file, one caption a line") from None
        captions = [line.strip() for line in lines if line.strip()]
        if not captions:
            raise ConfigError(f"--text-file {args.text_file} holds no caption; write one caption a line")
        texts += captions
    walk = None
    if args.interpolate_text is not None:
        a, sep, b = args.interpolate_text.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise ConfigError(f"--interpolate-text takes two captions as A:B, e.g. \"a thin three:a thick three\", "
                              f"got '{args.interpolate_text}'")
        walk = (a.strip(), b.strip())
    return {"texts": texts or None, "interpolate_text": walk}


def sample_count(n: int | None, controls: dict[str, Any], args: argparse.Namespace) -> int:
    """How many samples ``ganforge sample`` draws. Layouts in which every row means something (a class per row
    with --labels; a traversal per row with --code / --stage) need whole rows, and --labels needs every class
    the same number of rows, else the last classes would silently be missing: the default is exactly that
    (classes x per-row; 10 rows of per-row), and an explicit --n that is not is refused, naming the n that is."""
    from .errors import ConfigError
    cols = controls.get("per_row") or 10
    labels = controls.get("labels")
    if labels:
        unit, default = len(labels) * cols, len(labels) * cols
        what = (f"--labels {args.labels} lays out {len(labels)} classes, a row each, of {cols} samples "
                f"(--per-row), so it needs a multiple of {unit}")
    elif controls.get("texts"):
        texts = controls["texts"]
        unit, default = len(texts) * cols, len(texts) * cols
        what = (f"--text lays out {len(texts)} captions, a row each, of {cols} samples (--per-row), so it needs a "
                f"multiple of {unit}")
    elif controls.get("traverse") or controls.get("stage") or controls.get("interpolate_text"):
        unit, default = cols, TRAVERSAL_ROWS * cols
        flag = (f"--code {args.code}" if controls.get("traverse") else f"--stage {args.stage}" if controls.get("stage")
                else "--interpolate-text")
        what = f"{flag} fills rows of {cols} samples (--per-row), so it needs a multiple of {cols}"
    else:
        return DEFAULT_SAMPLES if n is None else n
    if n is None:
        return default
    if n % unit:
        lower, upper = (n // unit) * unit, (n // unit + 1) * unit
        choices = f"--n {lower} or --n {upper}" if lower else f"--n {upper}"
        then = "" if default in (lower, upper) else f" (then {default})"
        raise ConfigError(f"--n {n} does not fill whole rows: {what}; use {choices}, or leave --n out{then}")
    return n


def cmd_translate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from .api import load
    from .errors import ConfigError
    from .translate_io import check_output, fit_channels, read_inputs, resize, write_outputs
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    controls = {"direction": args.direction, "to": args.to, "from_domain": args.from_domain,
                "attrs": [a.strip() for a in args.attrs.split(",") if a.strip()] if args.attrs else None}
    inputs = read_inputs(args.input)
    out = check_output(args.out, inputs)                  # before loading the model
    model = load(args.run_dir, device=args.device, use_ema=not args.no_ema, step=args.checkpoint)
    channels, height, width = model.input_shape(**{k: v for k, v in controls.items() if v is not None})
    multiple = model.input_size_multiple()
    sizes = [im.shape[:2] for im in inputs.images]
    converted = sum(im.shape[-1] != channels for im in inputs.images)
    images = [fit_channels(im, channels) for im in inputs.images]
    if multiple is None:   # a fixed-size translator: every image at the model's size, the outputs back to theirs
        runs = {(height, width): list(range(len(images)))}
        fitted = [(height, width)] * len(images)
    else:                  # fully convolutional: each image at its own size (rounded down to the multiple)
        fitted = [(max(multiple, h // multiple * multiple), max(multiple, w // multiple * multiple)) for h, w in sizes]
        runs = {}
        for i, size in enumerate(fitted):
            runs.setdefault(size, []).append(i)
    other_size = sum(s != f for s, f in zip(sizes, fitted))
    results: list[Any] = [None] * len(images)
    for (h_in, w_in), members in runs.items():   # one batch per input size
        batch = np.stack([resize(images[i], h_in, w_in) for i in members])
        outputs = model.translate(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous(), seed=args.seed,
                                  batch_size=args.batch_size, **controls)
        outputs_hwc = outputs.permute(0, 2, 3, 1).numpy()
        scale_h, scale_w = outputs_hwc.shape[1] / h_in, outputs_hwc.shape[2] / w_in   # SR models: x4
        for i, o in zip(members, outputs_hwc):
            h, w = sizes[i]
            results[i] = resize(o, round(h * scale_h), round(w * scale_w))
    if converted:
        print(f"converted {converted} of {len(sizes)} images to the model's {channels} channel(s)")
    if other_size and multiple is None:
        print(f"resized {other_size} of {len(sizes)} images to the model's {height}x{width} input and their outputs "
              "back to their own size (bicubic)")
    elif other_size:
        print(f"resized {other_size} of {len(sizes)} images to sides that are multiples of {multiple} and their "
              "outputs back to their own size times the model's scale (bicubic)")
    where = write_outputs(out, results, inputs.names)
    print(f"translated {len(results)} images with {model.config.name} (step {model.step}) to {where}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from .api import load
    from .errors import ConfigError
    from .translate_io import fit_channels, read_inputs, resize
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".npz" or out.is_dir():
        raise ConfigError(f"--out {out}: codes are written as a .npz (arr_0 float32 N x latent_dim); give a .npz name")
    inputs = read_inputs(args.input)
    model = load(args.run_dir, device=args.device, use_ema=not args.no_ema, step=args.checkpoint)
    channels, height, width = model.encoder_input_shape()
    images = [resize(fit_channels(im, channels), height, width) for im in inputs.images]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    codes = model.encode(batch, batch_size=args.batch_size).numpy().astype(np.float32)
    converted = sum(im.shape[-1] != channels for im in inputs.images)
    other_size = sum(im.shape[:2] != (height, width) for im in inputs.images)
    if converted:
        print(f"converted {converted} of {len(images)} images to the model's {channels} channel(s)")
    if other_size:
        print(f"resized {other_size} of {len(images)} images to the model's {height}x{width} input (bicubic)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez(tmp, arr_0=codes, names=np.array(inputs.names))
    tmp.replace(out)
    print(f"encoded {len(codes)} images with {model.config.name} (step {model.step}) to {out} (arr_0 float32 "
          f"{codes.shape[0]} x {codes.shape[1]})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .metrics.evaluate import evaluate, format_table, is_run_dir, load_target, parse_metrics
    if args.n is not None and args.n < 2:
        raise ConfigError(f"--n must be at least 2, got {args.n}")
    target = Path(args.target).expanduser()
    controls = {"direction": args.direction, "to": args.to, "from_domain": args.from_domain,
                "attrs": [a.strip() for a in args.attrs.split(",") if a.strip()] if args.attrs else None}
    given = [f"--{k}" for k, v in controls.items() if v is not None] + (["--input"] if args.input else [])
    model = None
    if is_run_dir(target):
        from .api import load
        from .metrics.translation import is_translator
        model = load(target, device=args.device, use_ema=not args.no_ema, step=args.checkpoint)
        if not is_translator(model.algorithm):
            model = None
    if model is not None:
        from .metrics.translation import evaluate_translation, format_translation_table
        result = evaluate_translation(model, args.metrics, input_spec=args.input, n=args.n, seed=args.seed,
                                      ref=args.ref, features=args.features,
                                      inception_weights=args.inception_weights, device=args.device, **controls)
        result["metrics"] = [k for k in ("l1", "psnr", "ssim", "content", "fid", "kid", "precision", "density")
                             if k in result]
        print(format_translation_table(result))
    else:
        if given:
            raise ConfigError(f"{given[0]} is for translation runs; {args.target} is not one")
        samples = load_target(args.target, args.n, seed=args.seed, device=args.device, use_ema=not args.no_ema,
                              checkpoint=args.checkpoint)
        metrics = parse_metrics(args.metrics, samples.kind)
        result = evaluate(samples, metrics, ref=args.ref, features=args.features,
                          inception_weights=args.inception_weights, device=args.device, seed=args.seed)
        result["metrics"] = metrics
        print(format_table(result))
    # Where the numbers go: a run directory keeps them in its history (and its report shows them); a samples file
    # gets FILE.eval.json beside it; anything else (a data source, a folder) only prints, unless --json-out says
    # where, so that evaluating real data never drops an eval.json into the working directory.
    outs: list[Path] = [Path(args.json_out)] if args.json_out else []
    if not args.json_out and target.is_file():
        outs.append(target.with_name(target.stem + ".eval.json"))
    from .train.checkpoint import atomic_write_text
    try:
        if is_run_dir(target):
            from .report import record_eval, write_report
            print(f"recorded {record_eval(target, result)} (and {target / 'eval.json'})")
            print(f"updated {write_report(target)}")
        for out in outs:
            atomic_write_text(out, json.dumps(result, indent=1))
            print(f"wrote {out}")
    except OSError as e:
        where = e.filename or (outs[0] if outs else target)
        raise ConfigError(f"cannot write {where} ({e.strerror}); pass --json-out FILE somewhere writable") from None
    if not outs and not is_run_dir(target):
        print("(not saved: add --json-out FILE to keep these numbers)")
    return 0


def run_summary(run_dir: Path) -> dict[str, Any]:
    from .report import latest_eval, read_metrics
    from .train.checkpoint import latest_checkpoint, list_checkpoints, read_state
    from .train.rundir import read_run
    cfg, info, meta = read_run(run_dir)     # checks config.yaml, run.json and metrics.jsonl (one line if damaged)
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if r.get("kind", "train") == "train"]
    ckpt = latest_checkpoint(run_dir)
    # The step a damaged or hand-edited state.json claims is refused (CheckpointError), not shown as progress.
    step = read_state(ckpt)["step"] if ckpt is not None else 0
    samples = sorted((run_dir / "samples").glob("step-*.png")) if (run_dir / "samples").is_dir() else []
    return {"run_dir": str(run_dir), "recipe": cfg.name, "description": cfg.description, "citation": cfg.citation,
            "source": cfg.source,
            "data": cfg.data.source, "sample_shape": list(info.sample_shape), "num_classes": info.num_classes,
            "steps_done": step, "steps_total": cfg.train.steps, "checkpoint": str(ckpt) if ckpt else None,
            "checkpoints": [p.name for p in list_checkpoints(run_dir)], "command": meta.get("command"),
            "created": meta.get("created"), "device": meta.get("device"),
            "last_train": train_rows[-1] if train_rows else None,
            "last_eval": latest_eval(run_dir, scalars_only=True),   # `ganforge eval` history or eval_every rows
            "latest_samples": str(samples[-1]) if samples else None,
            "report": str(run_dir / "report.html") if (run_dir / "report.html").is_file() else None}


def cmd_info(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    from .inference import checkpoint_facts   # --checkpoint: that checkpoint (and its step) instead of the newest
    s = {**run_summary(run_dir), **checkpoint_facts(run_dir, args.checkpoint)}
    if args.report:
        from .report import write_report
        s["report"] = str(write_report(run_dir))
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"{s['recipe']}: {s['description']}")
    if s.get("citation"):
        print(f"  cites:      {s['citation']}")
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


DATA_GRID_DEFAULT = 64          # `ganforge data --grid` shows this many images unless --n says otherwise
DATA_TEXT_CLASSES = 20          # the text summary lists this many classes / attributes / domains, then "..."


def _tensor_facts(t: "torch.Tensor") -> dict[str, Any]:
    """Per-sample shape, dtype and value range of one batch key's whole tensor (first dimension N)."""
    empty = t.numel() == 0
    cast = int if not t.dtype.is_floating_point else float
    return {"shape": list(t.shape[1:]), "dtype": str(t.dtype).removeprefix("torch."),
            "min": None if empty else cast(t.min()), "max": None if empty else cast(t.max())}


def _named_counts(names: list[Any] | None, counts: list[int] | None, k: int) -> dict[str, Any]:
    # A name may be a record (glyphs' fonts: {"name", "path", "index"}): its name is what a reader needs here.
    names = [str(n.get("name", n)) if isinstance(n, dict) else str(n) for n in names] if names else \
        [str(i) for i in range(k)]
    return {"count": len(names), "names": names, **({"counts": counts} if counts is not None else {})}


def _describe_data(spec: str) -> tuple[dict[str, Any], Any]:
    """(what ``ganforge data`` reports, the loaded Dataset)."""
    import re
    import torch
    from .data import load_source, resolve_source, source_help
    resolved = resolve_source(spec)
    ds = load_source(spec, seed=0)
    tensors = {("image" if ds.kind == "image" else "vector"): ds.x, **({"label": ds.y} if ds.y is not None else {}),
               **ds.fields}
    facts: dict[str, Any] = {"source": spec, "resolved": resolved, "name": ds.name, "kind": ds.kind,
                             "count": len(ds), "keys": list(ds.keys()),
                             "fields": {k: _tensor_facts(tensors[k]) for k in ds.keys()}}
    if ds.y is not None:
        k = ds.num_classes
        facts["classes"] = _named_counts(ds.class_names, torch.bincount(ds.y, minlength=k)[:k].tolist()
                                         if len(ds.y) and int(ds.y.min()) >= 0 else None, k)
    attrs = ds.fields.get("attributes")
    names = ds.meta.get("attributes")
    if attrs is not None or names:
        k = attrs.shape[1] if attrs is not None else len(names)
        # counts: the samples that have each attribute (multi-hot value above 0.5)
        facts["attributes"] = _named_counts(names, (attrs > 0.5).sum(0).tolist() if attrs is not None else None, k)
    dom = ds.fields.get("domain")
    names = ds.meta.get("domains") or ds.meta.get("fonts")
    if dom is not None or names:
        k = len(names) if names else (int(dom.max()) + 1 if len(dom) else 0)
        counts = torch.bincount(dom, minlength=k)[:k].tolist() if dom is not None and len(dom) else None
        facts["domains"] = _named_counts(names, counts, k)
    vocab = ds.meta.get("vocab")
    if vocab is not None:
        facts["vocab_size"] = vocab if isinstance(vocab, int) else len(vocab)
    # The splits a source takes are the ones its help text names (`?split=train|test|all`), the same line
    # `ganforge list --all` shows: one place to keep them, read by both.
    prefix = resolved.partition(":")[0].partition("?")[0]
    found = re.search(r"split=([\w|]+)", source_help().get(prefix, ""))
    facts["splits"] = found.group(1).split("|") if found else []
    return facts, ds


def _data_grid(ds: Any, n: int | None, out: Path) -> str:
    """Write the --grid PNG; return what each cell shows."""
    import torch
    import torch.nn.functional as F
    from .report import save_grid, save_scatter
    if ds.kind != "image":
        points = ds.x[:n] if n else ds.x
        toy = ds.meta.get("toy")
        ref = None
        if toy:
            from .data.toy2d import mode_centers
            ref = mode_centers(toy)[0]
        if points.ndim != 2 or points.shape[1] != 2:
            from .errors import DataError
            raise DataError(f"--grid draws images or 2-D points; {ds.name} holds {tuple(points.shape[1:])} vectors")
        save_scatter(points, out, reference=ref)
        return f"{len(points)} points" + (" over the mode centres" if ref is not None else "")
    n = min(n or DATA_GRID_DEFAULT, len(ds))
    image = ds.x[:n]
    h, w = image.shape[-2:]
    parts, names = [image], ["image"]
    if "lowres" in ds.fields:   # the input of super-resolution, left of what it should become
        parts.insert(0, ds.fields["lowres"][:n])
        names.insert(0, "lowres")
    if "target" in ds.fields:
        parts.append(ds.fields["target"][:n])
        names.append("target")
    channels = max(p.shape[1] for p in parts)
    # Each part to the image's size (nearest: pixels shown as they are, a low-resolution input as blocks) and to
    # a common channel count, so one sample's parts sit side by side in one cell.
    cells = []
    for p in parts:
        if p.shape[-2:] != (h, w):
            p = F.interpolate(p.float(), size=(h, w), mode="nearest").to(torch.uint8)
        if p.shape[1] != channels:
            p = p[:, :1].expand(-1, channels, -1, -1)
        cells.append(p)
    save_grid(torch.cat(cells, dim=3).contiguous(), out, scale=max(1, 64 // h))
    return f"{n} samples: " + " | ".join(names)


def _data_text(facts: dict[str, Any]) -> str:
    def listed(group: dict[str, Any]) -> str:
        counts = group.get("counts")
        items = [f"{name} {counts[i]}" if counts is not None else name for i, name in enumerate(group["names"])]
        more = f", ... ({len(items) - DATA_TEXT_CLASSES} more)" if len(items) > DATA_TEXT_CLASSES else ""
        return f"{group['count']}: " + ", ".join(items[:DATA_TEXT_CLASSES]) + more

    where = facts["source"] if facts["resolved"] == facts["source"] else f"{facts['source']} ({facts['resolved']})"
    lines = [f"{where}: {facts['count']} samples, {facts['kind']} data"]
    rows = [("keys", ", ".join(facts["keys"]))]
    for key, f in facts["fields"].items():
        shape = str(tuple(f["shape"])) if f["shape"] else "scalar"
        values = "empty" if f["min"] is None else f"values {f['min']:.4g}..{f['max']:.4g}"
        rows.append((f"  {key}", f"{f['dtype']} {shape}, {values}"))
    for key, label in (("classes", "classes"), ("attributes", "attributes"), ("domains", "domains")):
        if key in facts:
            rows.append((label, listed(facts[key])))
    if "vocab_size" in facts:
        rows.append(("vocab", f"{facts['vocab_size']} tokens"))
    rows.append(("splits", ", ".join(facts["splits"]) if facts["splits"] else "none (the whole source)"))
    if "grid" in facts:
        rows.append(("grid", f"{facts['grid']} ({facts['grid_shows']})"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(lines + [f"  {k:<{width}}  {v}" for k, v in rows])


def cmd_data(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    if args.n is not None and args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if args.grid is not None and Path(args.grid).suffix.lower() != ".png":
        raise ConfigError(f"--grid must name a .png file, got '{Path(args.grid).name}'")
    if args.n is not None and args.grid is None:
        raise ConfigError("--n sets the samples in the --grid PNG; add --grid FILE.png")
    facts, ds = _describe_data(args.source)
    if args.grid is not None:
        out = Path(args.grid)
        try:
            facts["grid_shows"] = _data_grid(ds, args.n, out)
        except OSError as e:
            raise ConfigError(f"cannot write {e.filename or out} ({e.strerror}); pass --grid somewhere writable") \
                from None
        facts["grid"] = str(out)
    print(json.dumps(facts, indent=1) if args.json else _data_text(facts))
    return 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "sample": cmd_sample, "translate": cmd_translate, "encode": cmd_encode,
            "eval": cmd_eval, "info": cmd_info,
            "data": cmd_data}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from .errors import GanforgeError
    previous = _sigterm_interrupts()
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
    except Exception as e:     # a bug, not bad input: one line for the user, the whole trace in a file
        return report_internal_error(e)
    finally:
        if previous is not None:
            import signal
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _sigterm_interrupts() -> Any:
    """SIGINT and SIGTERM stop a command (one line, exit 130) from its first moment, torch's import included, and are
    remembered (``interrupts.py``) where Python drops the KeyboardInterrupt; the trainer's own handlers take over
    while it trains (a checkpoint, then 130). Returns the handlers it replaced."""
    import signal
    import threading
    from . import interrupts
    if threading.current_thread() is not threading.main_thread():
        return None
    interrupts.clear()
    return {sig: signal.signal(sig, interrupts.interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}


def run() -> None:
    """The console script: ``main`` and exit. After an interrupt the process ends without the interpreter's
    finalisation, which a KeyboardInterrupt inside a half-done torch import can turn into a second interrupt (status
    -2 instead of 130) or a wait at exit."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise SystemExit(code)


def report_internal_error(exc: BaseException) -> int:
    """Write the full traceback to RUN/error.log (or a temporary file when no run directory exists yet) and print
    one line saying what failed and where the trace is; exit status 1."""
    import tempfile
    import time
    import traceback
    from .errors import current_run_dir
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    run_dir = current_run_dir()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    text = f"{stamp} ganforge {' '.join(sys.argv[1:])}\n{trace}\n"
    log = None
    for folder in ([Path(str(run_dir))] if run_dir else []) + [Path(tempfile.gettempdir())]:
        path = folder / "error.log" if folder != Path(tempfile.gettempdir()) else \
            folder / f"ganforge-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        try:
            with open(path, "a") as fh:
                fh.write(text)
            log = path
            break
        except OSError:
            continue
    first = (str(exc).splitlines() or [""])[0][:200]
    where = f" in run {run_dir}" if run_dir else ""
    trace_at = f"; full trace in {log}" if log else ""
    print(f"ganforge: internal error{where}: {type(exc).__name__}: {first}{trace_at}. "
          "This is a bug in ganforge, not in your input; please report it with that file", file=sys.stderr)
    return 1
