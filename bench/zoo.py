"""The results table: train every recipe (or a family) for its own stated budget, evaluate it, write the table.

    .venv/bin/python bench/zoo.py --family toy                  # train + evaluate the toy recipes, print the table
    .venv/bin/python bench/zoo.py --jobs 2 --time-limit 1800    # everything, two 1-thread runs at a time, <= 30 min
                                                                # of training per recipe this sitting
    .venv/bin/python bench/zoo.py --table-only                  # the table of what is measured so far

Each recipe trains at its own ``train.steps`` (the budget its recipe states) in ``ROOT/RECIPE`` at one thread.
The table is built over several sittings: a run that is not finished is resumed (bit-exact, the trainer's own
resume), one that is finished and evaluated is only read, and ``--time-limit`` stops each run's training this
sitting after that many seconds (it goes on next time). Two zoo processes may work on the same ROOT (each recipe is
claimed with a lock file naming its process; a lock left by a dead process is taken over). CPU-minutes are the
training process's own user + system CPU time, summed over sittings.

Recipes that need data the user brings (``cifar10:DIR``, ``aligned:facades`` ...) are listed as such, and recipes
whose stated steps exceed ``--max-steps`` (paper-scale settings) as over the cap, rather than trained -- unless
``--cap-steps N`` is given: then a paper-scale recipe on offline data trains its own settings for N steps (only
``train.steps`` changed, so a schedule stated over the whole run is compressed; the book recipes here use constant
or per-step-decay rates) and its row says "capped; recipe M" -- or ``--budget-minutes M``: then it trains its own
settings, ``train.steps`` included (no schedule is touched), for M CPU-minutes at one thread (the trainer's
``train.time_limit_clock: cpu``, so a busy machine does not shorten it), summed over sittings, and is evaluated
once the budget is spent; its row gives the steps it reached ("in M min; recipe N"). That is the question a CPU
user asks of a 40,000-step recipe: what it reaches in the minutes they have.

    .venv/bin/python bench/zoo.py --family objectives --cap-steps 3000    # the book's 40,000-step MNIST recipes
    .venv/bin/python bench/zoo.py --family objectives --max-steps 5000 --budget-minutes 6 --jobs 2

A recipe that ``starts_from`` another (SRGAN from SRResNet) starts from that recipe's run in ROOT, trained first
(or waited for while another zoo process trains it); its row says so. A recipe whose training diverges is a final
row naming the step; one that ``ganforge eval`` cannot score (unlabelled data) gives the reason in its row.

Figures per run (``ganforge eval RUN``: the domain classifier's features, ``--n`` samples): domain FID and KID,
precision / recall, covered modes and label accuracy for image GANs; modes and the high-quality share for the 2-D
toys; for translators the content preservation, FID of translations and the paired L1 / PSNR / SSIM where the data
is paired. The real-data floor is the domain FID of the held-out split against the training split of the same
source (mnist5k and the sources built on it), the best a generator of that data can score at that n.

Output: ``ROOT/zoo.json`` (every row, with the machine) and ``ROOT/zoo.md`` (the markdown table the README shows).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "bench" / "zoo-runs"
DEFAULT_MAX_STEPS = 20_000
COLUMNS = [("recipe", "recipe"), ("family", "family"), ("data", "data"), ("steps", "steps"),
           ("cpu_minutes", "CPU-min"), ("precision", "dtype"), ("fid", "domain FID"), ("kid", "KID"),
           ("precision_pr", "precision"), ("recall", "recall"), ("modes", "modes"),
           ("label_accuracy", "label acc"), ("figure", "family figure"), ("floor_fid", "real floor FID")]


# ------------------------------------------------------------------------------------------- selection
def recipes_in(family: str | None, names: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    from ganforge.config import read_recipe, recipe_names
    from ganforge.report.citations import recipe_family
    chosen = []
    for name in recipe_names():
        raw = read_recipe(name)
        if names and name not in names:
            continue
        if family and recipe_family(raw) != family:
            continue
        chosen.append((name, raw))
    missing = sorted(set(names or []) - {n for n, _ in chosen})
    if missing:
        sys.exit(f"zoo: unknown recipe(s) {', '.join(missing)}; `ganforge list` names them")
    return chosen


def data_source(raw: dict[str, Any]) -> str:
    data = raw.get("data") or {}
    return str(data.get("source", "mnist5k") if isinstance(data, dict) else data)


def stated_steps(raw: dict[str, Any]) -> int:
    return int((raw.get("train") or {}).get("steps", 0) or 0)


def zoo_steps(raw: dict[str, Any], max_steps: int, cap_steps: int | None) -> int:
    """The steps the zoo trains: the recipe's own, or ``cap_steps`` for a paper-scale one when a cap is given."""
    steps = stated_steps(raw)
    return min(steps, cap_steps) if cap_steps and steps > max_steps else steps


def budget_seconds(raw: dict[str, Any], max_steps: int, budget_minutes: float | None) -> float | None:
    """The training time a paper-scale recipe gets under ``--budget-minutes`` (None: it trains its stated steps)."""
    return budget_minutes * 60.0 if budget_minutes and stated_steps(raw) > max_steps else None


def why_skipped(raw: dict[str, Any], max_steps: int, cap_steps: int | None = None,
                budget_minutes: float | None = None) -> str | None:
    """None for a recipe the zoo trains here, else why not (user data, paper-scale steps without a cap or budget)."""
    from ganforge.data import load_source
    from ganforge.errors import GanforgeError
    steps = stated_steps(raw)
    sources = [data_source(raw)] + [str(s.get("source")) for s in ((raw.get("data") or {}).get("streams") or {})
                                    .values() if isinstance(s, dict) and s.get("source")]
    for spec in sources:
        try:
            load_source(spec)
        except GanforgeError:
            return f"needs user data ({spec})"
    if steps > max_steps and not (cap_steps or budget_minutes):
        return f"paper scale: {steps:,} steps > --max-steps {max_steps:,}"
    return None


# ------------------------------------------------------------------------------------------- one recipe
def state_path(root: Path, recipe: str) -> Path:
    return root / recipe / "zoo.json"


def read_state(root: Path, recipe: str) -> dict[str, Any]:
    path = state_path(root, recipe)
    return json.loads(path.read_text()) if path.is_file() else {}


def write_state(root: Path, recipe: str, state: dict[str, Any]) -> None:
    path = state_path(root, recipe)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def claim(root: Path, recipe: str) -> bool:
    """Take ``ROOT/RECIPE.lock`` (O_EXCL); a lock whose process is gone is taken over."""
    lock = root / f"{recipe}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or 0)
                os.kill(pid, 0)
                return False                    # another zoo process works on it
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)    # stale: its process died
                continue
            except PermissionError:
                return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def trained_steps(run_dir: Path) -> int:
    from ganforge.train.checkpoint import latest_checkpoint, read_state
    ckpt = latest_checkpoint(run_dir) if (run_dir / "checkpoints").is_dir() else None
    return int(read_state(ckpt)["step"]) if ckpt else 0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_one(root: Path, recipe: str, raw: dict[str, Any], time_limit: float | None,
              target: int | None = None, budget_s: float | None = None,
              overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume) RECIPE in this process, one thread, to ``target`` steps (its own by default: a smaller
    target trains the recipe unchanged except ``train.steps``, for a CPU figure of a paper-scale recipe), or, with
    ``budget_s``, its own steps until that much training time (summed over sittings) is spent; the state with CPU
    time summed over sittings. A recipe that ``starts_from`` another starts from that recipe's run in ROOT (which
    must be finished: ``work_one`` sees to it). ``overrides`` (config keys, e.g. ``train.precision``) apply to the
    whole run: a run begun with other overrides starts over."""
    import torch

    import ganforge
    torch.set_num_threads(1)
    run_dir = root / recipe / "run"
    stated = stated_steps(raw)
    target = target or stated
    state = read_state(root, recipe)
    starts_from = str(raw.get("starts_from") or "")
    overrides = dict(overrides or {})
    if (state.get("stated_steps", stated) != stated or state.get("starts_from", "") != starts_from
            or state.get("overrides", {}) != overrides):
        # the recipe's steps changed since this run began: its schedules (a decay over the last N steps) would not be
        # the recipe's if it went on, so it starts over (force moves the old run aside); so does a run begun from
        # another start than the recipe's
        state, done = {"starts_from": starts_from} if starts_from else {}, 0
        if overrides:
            state["overrides"] = overrides
    else:
        done = trained_steps(run_dir)
    if state.get("diverged"):
        return state                    # final: the same recipe and seed diverge again
    budget_left = None
    if budget_s:
        state["budget_seconds"] = budget_s
        budget_left = budget_s - state.get("cpu_seconds", 0.0)
        if state.get("budget_spent"):
            target = state["target_steps"]
    if done < target and (budget_left is None or budget_left > 0):
        before, wall = cpu_seconds(), time.time()
        this_sitting = min(x for x in (time_limit, budget_left, float("inf")) if x)
        # 0: no limit (a limit of an earlier sitting stays otherwise); counted in this process's CPU seconds, so a
        # busy machine does not shorten a budget
        # train.steps always: a run capped below its recipe's steps and now raised to them resumes with its
        # config's (capped) steps otherwise, and trains nothing
        limit = {"train.time_limit_s": 0.0 if this_sitting == float("inf") else this_sitting,
                 "train.time_limit_clock": "cpu", "train.steps": target}
        try:
            if done == 0:
                ganforge.train(recipe, out=run_dir, force=True, progress="log", command=f"bench/zoo.py ({recipe})",
                               overrides={**overrides, "train.threads": 1, **limit},
                               init_from=root / starts_from / "run" if starts_from else None)
            else:
                ganforge.train(resume=run_dir, progress="log", command=f"bench/zoo.py ({recipe}, resumed)",
                               overrides={"train.threads": 1, **limit})
        except ganforge.TrainingDiverged as e:
            # the recipe's own failure, a figure of the table: its row says where (the message's first clause)
            state["diverged"] = str(e).split(";")[0]
            print(f"zoo: {recipe}: {state['diverged']}", flush=True)
        finally:        # an interrupted sitting (SIGTERM / Ctrl-C: the trainer checkpoints, then raises) counts too
            state["cpu_seconds"] = state.get("cpu_seconds", 0.0) + cpu_seconds() - before
            state["wall_seconds"] = state.get("wall_seconds", 0.0) + time.time() - wall
            state.pop("eval", None)        # figures of an older checkpoint
            state.update(steps=trained_steps(run_dir), target_steps=target, stated_steps=stated)
            write_state(root, recipe, state)
        # returned normally: the budget is spent when its remainder was this sitting's limit (or the steps are done)
        if budget_left is not None and (this_sitting == budget_left or state["steps"] >= target):
            state["budget_spent"] = True
            target = state["steps"]
    elif budget_left is not None and budget_left <= 0:
        state["budget_spent"] = True
        target = done
    state.update(steps=trained_steps(run_dir), target_steps=target, stated_steps=stated)
    write_state(root, recipe, state)
    return state


def evaluate_one(root: Path, recipe: str, n: int) -> dict[str, Any]:
    """``ganforge eval RUN`` in a one-thread child process; its JSON into the state."""
    state = read_state(root, recipe)
    if state.get("steps", 0) < state.get("target_steps", 1) or "eval" in state or state.get("diverged"):
        return state
    out = root / recipe / "eval.json"
    done = subprocess.run([sys.executable, "-m", "ganforge", "eval", str(root / recipe / "run"), "--n", str(n),
                           "--json-out", str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          stderr=subprocess.PIPE, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        # a run `ganforge eval` cannot score (unlabelled data has no domain evaluator): its row says why
        errors = [line for line in done.stderr.splitlines() if line.startswith("ganforge: ")]
        why = errors[-1] if errors else f"exit {done.returncode}"
        state["eval_error"] = why.removeprefix("ganforge: ").removeprefix("error: ")
        write_state(root, recipe, state)
        return state
    state.pop("eval_error", None)
    state["eval"] = json.loads(out.read_text())
    write_state(root, recipe, state)
    return state


def floor_fid(root: Path, source: str, n: int) -> float | None:
    """Domain FID of the held-out split against the training split of a mnist5k-based source (cached)."""
    if not source.startswith("mnist5k"):
        return None
    base, _, query = source.partition("?")
    options = [o for o in query.split("&") if o and not o.startswith("split=")]
    held_out = base + "?" + "&".join(["split=test", *options])
    train = base + "?" + "&".join(["split=train", *options])
    cache = root / "floors.json"
    floors = json.loads(cache.read_text()) if cache.is_file() else {}
    if held_out not in floors:
        out = root / "floor.tmp.json"
        subprocess.run([sys.executable, "-m", "ganforge", "eval", held_out, "--ref", train, "--metrics", "fid",
                        "--n", str(n), "--json-out", str(out)], check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        floors[held_out] = json.loads(out.read_text())["fid"]
        cache.write_text(json.dumps(floors, indent=1))
    return floors[held_out]


def finished(state: dict[str, Any]) -> bool:
    """Trained as far as the zoo trains it: its steps reached, its CPU budget spent, or diverged."""
    return bool(state) and bool(state.get("diverged") or state.get("budget_spent") or (
        not state.get("budget_seconds") and state.get("steps", 0) >= state.get("target_steps", 1)))


CLAIMED_ELSEWHERE = 3


def work_one(args: argparse.Namespace, recipe: str | None = None) -> int:
    """Train and evaluate one recipe (``--one``), after the recipe it ``starts_from`` (trained here, or waited for
    while another process works on it). 0 when done, 1 when its start could not be finished this sitting,
    ``CLAIMED_ELSEWHERE`` when another process works on it."""
    from ganforge.config import read_recipe
    root, recipe = Path(args.root), recipe or args.one
    raw = read_recipe(recipe)
    base = str(raw.get("starts_from") or "")
    while base and not finished(read_state(root, base)):
        if work_one(args, base) == CLAIMED_ELSEWHERE:
            time.sleep(5)
        elif not finished(read_state(root, base)):
            print(f"zoo: {recipe} starts from {base}, which is not finished this sitting; {recipe} waits", flush=True)
            return 1
    if not claim(root, recipe):
        print(f"zoo: {recipe} is being worked on by another process; skipped", flush=True)
        return CLAIMED_ELSEWHERE
    try:
        (root / recipe).mkdir(parents=True, exist_ok=True)
        train_one(root, recipe, raw, args.time_limit, zoo_steps(raw, args.max_steps, args.cap_steps),
                  budget_seconds(raw, args.max_steps, args.budget_minutes))
        evaluate_one(root, recipe, args.n)
    finally:
        (root / f"{recipe}.lock").unlink(missing_ok=True)
    return 0


# ------------------------------------------------------------------------------------------- the table
def family_figure(ev: dict[str, Any]) -> str:
    if "modes_covered" in ev:
        return f"{ev['modes_covered']}/{ev.get('num_modes', '?')} modes, {ev.get('high_quality', 0.0):.2f} high-quality"
    parts = []
    for key in ("content", "psnr", "ssim", "l1"):
        if isinstance(ev.get(key), (int, float)):
            # beside the translator that does nothing (copying the input; bicubic for super-resolution)
            of = ev.get("baseline_content_of" if key == "content" else "baseline")
            base = ev.get(f"baseline_{key}")
            parts.append(f"{key} {ev[key]:.3g}" + (f" ({of} {base:.3g})" if isinstance(base, (int, float)) else ""))
    return ", ".join(parts)


def row_for(root: Path, recipe: str, raw: dict[str, Any], skipped: str | None, n: int) -> dict[str, Any]:
    from ganforge.report.citations import recipe_family
    row: dict[str, Any] = {"recipe": recipe, "family": recipe_family(raw), "data": data_source(raw)}
    if skipped:
        return {**row, "figure": skipped}
    state = read_state(root, recipe)
    if not state:
        return {**row, "figure": "not run yet"}
    config = root / recipe / "run" / "config.yaml"
    precision = "-"
    if config.is_file():
        import yaml
        precision = (yaml.safe_load(config.read_text()).get("train") or {}).get("precision", "-")
    ev = state.get("eval", {})
    steps = f"{state.get('steps', 0):,}/{state.get('target_steps', 0):,}"
    if state.get("budget_seconds"):
        spent = "" if state.get("budget_spent") else ", budget not spent yet"
        steps = (f"{state.get('steps', 0):,} in {state['budget_seconds'] / 60:g} CPU-min "
                 f"(budget; recipe {state.get('stated_steps', 0):,}{spent})")
    elif state.get("stated_steps", 0) > state.get("target_steps", 0):
        steps += f" (capped; recipe {state['stated_steps']:,})"
    if state.get("diverged"):
        steps = f"{state.get('steps', 0):,} checkpointed, then diverged (recipe {state.get('stated_steps', 0):,})"
    if state.get("starts_from"):
        steps += f", from {state['starts_from']}'s run"
    row.update(steps=steps,
               cpu_minutes=round(state.get("cpu_seconds", 0.0) / 60, 1), precision=precision,
               fid=ev.get("fid"), kid=ev.get("kid"), precision_pr=ev.get("precision"), recall=ev.get("recall"),
               modes=ev.get("modes", ev.get("modes_covered")), label_accuracy=ev.get("label_accuracy"),
               figure=(family_figure(ev) or None) if ev else
               (state["diverged"] if state.get("diverged") else
                f"not evaluated: {state['eval_error']}" if state.get("eval_error") else
                "not evaluated yet" if finished(state) else "training not finished"))
    if ev and "fid" in ev and ev.get("evaluation") != "translation":
        # a translation's FID is against its target domain's held-out images, not the run's training source
        row["floor_fid"] = floor_fid(root, row["data"], n)
    return row


def machine() -> str:
    name = platform.processor() or platform.machine()
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                    name)
        flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    except OSError:
        pass
    bf16 = "amx_bf16" in flags or "avx512_bf16" in flags
    return f"{name}, {os.cpu_count()} cores, {'native bf16' if bf16 else 'no native bf16 (AVX2 only)'}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """One table per family (in `ganforge list`'s order), each without the columns no row of it fills."""
    from ganforge.report.citations import FAMILIES

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    always = {"recipe", "steps"}
    sections = []
    for family, title in FAMILIES:
        group = [r for r in rows if r.get("family") == family]
        if not group:
            continue
        columns = [(k, h) for k, h in COLUMNS if k != "family" and (k in always or any(r.get(k) is not None
                                                                                      for r in group))]
        lines = [f"### {title}", "", "| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in group]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="only this family (as `ganforge list` groups them: image, toy, ...)")
    parser.add_argument("--recipes", help="comma-separated recipe names")
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="where the runs and the table live")
    parser.add_argument("--jobs", type=int, default=1, help="recipes trained at once, each one thread (at most 2 "
                                                            "on a 2-core machine)")
    parser.add_argument("--time-limit", type=float, help="seconds of training per recipe this sitting")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                        help="recipes stating more steps are listed as paper scale, not trained")
    parser.add_argument("--cap-steps", type=int, help="train paper-scale recipes on offline data for this many "
                                                      "steps (their own settings otherwise), marked capped")
    parser.add_argument("--budget-minutes", type=float, help="train paper-scale recipes on offline data for this "
                        "many CPU-minutes (one thread, summed over sittings; their own settings, steps included), then "
                        "evaluate")
    parser.add_argument("--n", type=int, default=2000, help="samples per evaluation")
    parser.add_argument("--table-only", action="store_true", help="write the table of what is measured; train "
                                                                  "nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)    # the child process that works on one recipe
    args = parser.parse_args()
    if args.cap_steps and args.budget_minutes:
        parser.error("--cap-steps and --budget-minutes are two ways to bound a paper-scale recipe: give one")
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    if args.one:
        return work_one(args)
    chosen = recipes_in(args.family, args.recipes.split(",") if args.recipes else None)
    skipped = {name: why_skipped(raw, args.max_steps, args.cap_steps, args.budget_minutes) for name, raw in chosen}
    todo = [name for name, _ in chosen if skipped[name] is None]
    if not args.table_only:
        print(f"zoo: {len(todo)} recipe(s) to train here, {len(chosen) - len(todo)} listed only", flush=True)
        running: list[subprocess.Popen] = []
        for name in todo:
            while len(running) >= max(1, args.jobs):
                running = [p for p in running if p.poll() is None]
                if len(running) >= max(1, args.jobs):
                    time.sleep(2)
            cmd = [sys.executable, __file__, "--one", name, "--root", str(root), "--n", str(args.n)]
            if args.time_limit:
                cmd += ["--time-limit", str(args.time_limit)]
            if args.cap_steps:
                cmd += ["--cap-steps", str(args.cap_steps)]
            if args.budget_minutes:
                cmd += ["--budget-minutes", str(args.budget_minutes)]
            cmd += ["--max-steps", str(args.max_steps)]
            running.append(subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}))
            running = [p for p in running if p.poll() is None]
        for p in running:
            p.wait()
    raws = dict(chosen)
    rows = [row_for(root, name, raws[name], skipped[name], args.n) for name, _ in chosen]
    header = f"Machine: {machine()}; torch {__import__('torch').__version__}; {time.strftime('%Y-%m-%d')}"
    (root / "zoo.json").write_text(json.dumps({"machine": header, "rows": rows}, indent=1))
    table = header + "\n\n" + markdown(rows)
    (root / "zoo.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
