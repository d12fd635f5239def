"""Per family: does bf16 learn as well as fp32 at equal steps? The measurement behind ``auto_bf16`` (issue 15).

    .venv/bin/python bench/bf16_check.py --jobs 2                      # every family below, two 1-thread runs at once
    .venv/bin/python bench/bf16_check.py --recipes dcgan-mnist-quick   # one family
    .venv/bin/python bench/bf16_check.py --table-only                  # the table of what is measured so far

For each family (an algorithm, and for the shared adversarial step a set of objectives) one representative recipe is
trained for the same number of steps three times, one thread each: fp32 with seeds 0 and 1 (how far two fp32 runs
land apart is the yardstick) and bf16 with seed 0 exactly as ``train.precision: auto`` would run it on a machine with
native bf16 (bf16 autocast + channels_last; the losses and gradient penalties stay fp32). Each run is scored by
``ganforge eval`` and the family's figures are compared (``FIGURES``: domain FID, paired L1, PSNR, or a toy's modes and
high-quality share): bf16 **learns as well** when each is no worse than the worse of the two fp32 seeds by more than
its tolerance, and it did not diverge where fp32 did not (``--second-bf16-seed`` adds bf16 seed 1 for a near miss: the
two bf16 seeds' mean is compared then). An fp32 seed that has learned nothing yet (a toy covering no mode, a
translator at chance content, an image GAN at a noise-level FID: ``not_learned``) is no yardstick: no verdict, and
the family stays fp32 under auto.

On a CPU without AVX512-BF16 / AMX (AVX2 only) torch emulates bf16: the arithmetic is the same (bf16 operands and
results, fp32 accumulation; only the order of the sums differs), ~3-15x slower, so its verdicts hold on native
hardware. The step counts below cost 2-12 CPU-minutes of emulated bf16 each on a 2-core AMD EPYC: early in each
recipe's training, so the check catches a family that stalls, diverges or learns measurably worse in bf16, not a
difference at convergence, and many families had no yardstick yet at these steps (README).

Runs are the zoo's (``bench/zoo.py``'s train_one / evaluate_one: resumable, CPU time summed over sittings) under
``ROOT/VARIANT/RECIPE``. Output: ``ROOT/bf16.json`` and ``ROOT/bf16.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402

DEFAULT_ROOT = zoo.REPO / "bench" / "bf16-runs"

# (recipe, steps): one representative per algorithm, and the adversarial step under each objective family it serves
# (on the 2-D toys; began-toy and ebgan-toy are left out: they do not learn the ring in fp32 at all, README "Results
# table"); steps sized for 2-12 CPU-minutes of emulated bf16 at one thread on a 2-core AMD EPYC; most important
# first, so a sitting cut short still answers for them
CHECKS: list[tuple[str, int]] = [
    ("dcgan-mnist-quick", 300), ("wgan-gp-toy", 3000), ("wgan-toy-quick", 4000), ("hinge-sn-toy", 4000),
    ("fgan-kl-toy", 4000), ("rsgan-toy", 4000), ("lsgan-toy", 4000), ("glsgan-toy", 4000),
    ("sagan-digits", 120), ("biggan-digits", 100), ("cyclegan-digits", 400), ("pix2pix-glyphs", 700),
    ("srresnet-digits", 800), ("stargan-digits", 100), ("progan-digits", 1000), ("stylegan-colour", 250),
    ("ali-digits", 1500), ("bigan-digits", 1500), ("vaegan-digits", 120), ("text2image-digits", 120),
    ("stackgan-digits", 600), ("unit-digits", 200), ("triplegan-mnist-quick", 120), ("cogan-digits", 200),
    ("xgan-digits", 200), ("combogan-digits", 200), ("stackgan2-digits", 300), ("stackedgan-mnist-quick", 80),
    ("lapgan-digits", 150), ("s3gan-digits", 80), ("vae-digits", 300), ("gan-toy", 2500),
]
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32-s0": {"train.precision": "fp32", "train.seed": 0},
    "fp32-s1": {"train.precision": "fp32", "train.seed": 1},
    "bf16-s0": {"train.precision": "bf16", "train.channels_last": True, "train.seed": 0},
    # only with --second-bf16-seed: a near miss against a narrow fp32 spread, told from noise
    "bf16-s1": {"train.precision": "bf16", "train.channels_last": True, "train.seed": 1},
}
# the figures compared, by kind of evaluation (the first of a kind's list that the evaluation has is its primary
# figure; the toys are judged on both of theirs): (key, higher is better, tolerance, relative?)
Figure = tuple[str, bool, float, bool]
FIGURES: list[list[Figure]] = [
    [("modes_covered", True, 0.10, True), ("high_quality", True, 0.05, False)],     # 2-D toys
    [("l1", False, 0.10, True)],                                                     # paired translation
    [("psnr", True, 0.5, False)],                                                    # super-resolution
    [("fid", False, 0.10, True)],                                                    # image GANs, unpaired translation
]


def figures_of(ev: dict[str, Any]) -> list[Figure]:
    return next(([f for f in kind if isinstance(ev.get(f[0]), (int, float))] for kind in FIGURES
                 if isinstance(ev.get(kind[0][0]), (int, float))), [])


def compare(figure: Figure, fp32: list[float], bf16: float) -> tuple[bool, float]:
    """Whether bf16 is within the tolerance of the worse fp32 seed, and that bound."""
    _, higher, tol, relative = figure
    worse = min(fp32) if higher else max(fp32)
    margin = abs(worse) * tol if relative else tol
    bound = worse - margin if higher else worse + margin
    return (bf16 >= bound if higher else bf16 <= bound), bound


# An image GAN's domain FID (digit-classifier features, n 1000-2000) at or above this is noise or blobs, not yet
# strokes: in the zoo's table (README "Results table") the runs whose grids show strokes or digits scored below ~450,
# the ones that had not started (progan-colour, began-mnist, stackedgan-mnist, wgan-mnist's 141 steps) 850-1900.
NOT_YET_FID = 600.0


def not_learned(ev: dict[str, Any]) -> str | None:
    """Why an fp32 run shows nothing learned yet (then it is no yardstick): a toy covering no mode, a translator
    whose content is at chance, an image GAN at a noise-level FID. None when it has learned something."""
    if ev.get("modes_covered") == 0:
        return "covered no mode"
    if isinstance(ev.get("content"), (int, float)) and isinstance(ev.get("content_chance"), (int, float)):
        if ev["content"] < ev["content_chance"] + 0.05:
            return f"content {ev['content']:.3g} is at chance ({ev['content_chance']:.3g})"
        return None
    if ev.get("evaluation") != "translation" and isinstance(ev.get("fid"), (int, float)) \
            and ev["fid"] >= NOT_YET_FID:
        return f"FID {ev['fid']:.4g} is noise level (>= {NOT_YET_FID:g})"
    return None


def verdict(fp32: list[dict[str, Any]], bf16: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare one family's runs (states as the zoo writes them): bf16 (one seed, or the mean of two where a second
    was run to tell a near miss from noise) against the worse fp32 seed. ``ok`` is None while a run is missing, or where
    an fp32 seed has learned nothing yet (``not_learned``): no yardstick."""
    if any(s.get("diverged") for s in fp32):
        return {"ok": None, "why": "an fp32 run diverged: no yardstick"}
    diverged = [s["diverged"] for s in bf16 if s.get("diverged")]
    if diverged:
        return {"ok": False, "why": f"bf16 {diverged[0]}"}
    evs = [s.get("eval") for s in fp32 + bf16]
    if not all(evs):
        return {"ok": None, "why": "not measured yet"}
    figures = figures_of(evs[0])
    if not figures:
        return {"ok": None, "why": "no figure to compare"}
    values = {f[0]: [float(ev[f[0]]) for ev in evs] for f in figures}
    row = {"figure": figures[0][0], "fp32": values[figures[0][0]][:2], "bf16": values[figures[0][0]][2:],
           "figures": values}
    unlearned = [why for why in map(not_learned, evs[:2]) if why]
    if unlearned:
        return {**row, "ok": None, "why": f"fp32 {unlearned[0]} at these steps: no yardstick"}
    verdicts = []
    for figure in figures:
        v = values[figure[0]]
        low = sum(v[2:]) / len(v[2:])                  # the bf16 seeds' mean
        ok, bound = compare(figure, v[:2], low)
        verdicts.append((ok, f"{figure[0]} bf16 {low:.4g} {'>=' if figure[1] else '<='} {bound:.4g}" if ok else
                         f"{figure[0]} bf16 {low:.4g} beyond {bound:.4g} (fp32 seeds {v[0]:.4g}, {v[1]:.4g})"))
    failed = [why for ok, why in verdicts if not ok]
    return {**row, "ok": not failed, "why": "; ".join(failed or [why for _, why in verdicts])}


def run_variant(root: Path, recipe: str, steps: int, variant: str, n: int) -> None:
    from ganforge.config import read_recipe
    where = root / variant
    (where / recipe).mkdir(parents=True, exist_ok=True)
    if not zoo.claim(where, recipe):
        print(f"bf16_check: {variant}/{recipe} is being worked on by another process; skipped", flush=True)
        return
    try:
        zoo.train_one(where, recipe, read_recipe(recipe), None, steps, overrides=VARIANTS[variant])
        zoo.evaluate_one(where, recipe, n)
    finally:
        (where / f"{recipe}.lock").unlink(missing_ok=True)


def table(root: Path, checks: list[tuple[str, int]]) -> tuple[list[dict[str, Any]], str]:
    from ganforge.config import read_recipe
    rows = []
    for recipe, steps in checks:
        raw = read_recipe(recipe)
        algorithm = (raw.get("algorithm") or {}).get("name", "adversarial")
        objective = (raw.get("objective") or {}).get("name", "-")
        states = {v: zoo.read_state(root / v, recipe) for v in VARIANTS}
        # the steps the runs reached (a check whose steps were raised shows its old runs' until they are resumed)
        reached = {s.get("steps") for s in states.values() if s}
        row = {"recipe": recipe, "algorithm": algorithm, "objective": objective,
               "steps": reached.pop() if len(reached) == 1 else steps,
               "cpu_minutes": {v: round(s.get("cpu_seconds", 0.0) / 60, 1) for v, s in states.items()},
               **verdict([states["fp32-s0"], states["fp32-s1"]],
                         [states["bf16-s0"]] + ([states["bf16-s1"]] if states["bf16-s1"] else []))}
        rows.append(row)
    lines = ["| recipe | algorithm | objective | steps | figure | fp32 seed 0 | fp32 seed 1 | bf16 seed 0 (, 1) "
             "| learns as well? | CPU-min fp32 / bf16 |", "|" + "---|" * 10]
    for r in rows:
        f = (lambda v: f"{v:.4g}")
        figures = ([f(r["fp32"][0]), f(r["fp32"][1]), ", ".join(map(f, r["bf16"]))] if "bf16" in r else
                   ["-", "-", "-"])
        answer = {True: "yes", False: "**no**", None: "-"}[r["ok"]]
        cpu = r["cpu_minutes"]
        lines.append(f"| {r['recipe']} | {r['algorithm']} | {r['objective']} | {r['steps']:,} | {r.get('figure', '-')} "
                     f"| {' | '.join(figures)} | {answer}: {r['why']} | {cpu['fp32-s0']} / {cpu['bf16-s0']} |")
    return rows, "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", help="comma-separated recipes of CHECKS (default: all)")
    parser.add_argument("--steps", type=int, help="train this many steps instead of each check's own")
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="where the runs and the table live")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each one thread (at most 2 on 2 cores)")
    parser.add_argument("--n", type=int, default=1000, help="samples per evaluation")
    parser.add_argument("--second-bf16-seed", action="store_true", help="also train bf16 with seed 1 (the two seeds' "
                        "mean is then compared): for a near miss")
    parser.add_argument("--table-only", action="store_true", help="write the table of what is measured; train nothing")
    parser.add_argument("--one", nargs=3, metavar=("RECIPE", "STEPS", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = Path(args.root)
    if args.one:
        recipe, steps, variant = args.one
        run_variant(root, recipe, int(steps), variant, args.n)
        return 0
    known = dict(CHECKS)
    names = args.recipes.split(",") if args.recipes else list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"bf16_check: {', '.join(unknown)} not among the checks; they are: {', '.join(known)}")
    checks = [(n, args.steps or known[n]) for n in names]
    if not args.table_only:
        # family by family (each one's verdict comes as soon as it can), its long bf16 run first
        variants = ("bf16-s0", "fp32-s0", "fp32-s1") + (("bf16-s1",) if args.second_bf16_seed else ())
        jobs = [(r, s, v) for r, s in checks for v in variants]
        running: list[subprocess.Popen] = []
        for recipe, steps, variant in jobs:
            while len([p for p in running if p.poll() is None]) >= max(1, args.jobs):
                time.sleep(2)
            running.append(subprocess.Popen([sys.executable, __file__, "--one", recipe, str(steps), variant,
                                             "--root", str(root), "--n", str(args.n)],
                                            env={**os.environ, "OMP_NUM_THREADS": "1"}))
        for p in running:
            p.wait()
    rows, text = table(root, checks)
    header = f"Machine: {zoo.machine()}; torch {__import__('torch').__version__}; {time.strftime('%Y-%m-%d')}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "bf16.json").write_text(json.dumps({"machine": header, "rows": rows}, indent=1))
    (root / "bf16.md").write_text(header + "\n\n" + text + "\n")
    print(header + "\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
