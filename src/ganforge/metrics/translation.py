"""``ganforge eval`` of a translation run: its held-out inputs translated and measured, beside the trivial baseline.

A translator (pix2pix, CycleGAN, StarGAN, SRGAN, ...) makes no samples from noise: it is judged on images it never
trained on. The held-out set (``data.held_out`` of the run, or ``--input SOURCE``) gives the inputs and, where it
has them, their true counterparts (``Algorithm.evaluation_pairs``: an aligned set's ``target``, a super-resolution
set's HR images for its ``lowres`` field, the other domain for CycleGAN's ``BtoA``). Three kinds of figure:

* paired (``l1``, ``psnr``, ``ssim``; :mod:`ganforge.metrics.paired`): each output against its own true
  counterpart, and the same for the baseline that does no work: the input itself ("copy") where it has the
  counterpart's shape, else its bicubic upsampling ("bicubic", super-resolution). A translator is worth its name only
  where it beats the baseline (issue 12's acceptance figures are read this way);
* ``content`` (:mod:`ganforge.metrics.content`): a classifier trained on real images of the *target* domain reads
  the outputs, against the labels of the inputs they came from (does a 3 stay a 3). Beside it the same classifier
  on the untranslated inputs (the baseline) and on the true counterparts (the ceiling);
* feature metrics (``fid``, ``kid``, ...; :func:`ganforge.metrics.evaluate.evaluate`) of the outputs against the
  target domain's real images.

The target domain's data (``--ref``) is derived where the run says it: a two-domain translator's ``direction``
AtoB targets ``data.streams.b``, BtoA the main data; a ``to`` control on a mixed source with ``domains=`` targets
``domain=NAME`` of the same source; a ``?split=train`` becomes ``?split=test`` (real images neither side trained
on). A translator of more than two domains goes by default ``to`` the domain its held-out set's true counterparts
are in where the set's spec names it (``domain=edges&paired=1``), and its outputs are compared with them; one
that needs a ``to`` (StarGAN) and is given none is evaluated to each domain in turn, the mean beside each.
Elsewhere (aligned pairs, super-resolution) only the paired figures are measured unless ``--ref`` names one.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError

TRANSLATION_METRICS = ("l1", "psnr", "ssim", "content", "fid", "kid", "pr", "dc")
PAIRED = ("l1", "psnr", "ssim")
FEATURE = ("fid", "kid", "pr", "dc")
FID_MIN = 100


def is_translator(algorithm: Any) -> bool:
    """A family whose samples come from data and that translates user images (``Algorithm.translate`` overridden)."""
    from ..algorithms.base import Algorithm
    return bool(algorithm.samples_from_data) and type(algorithm).translate is not Algorithm.translate


def _query_replace(spec: str, key: str, value: str | None) -> str:
    """``spec`` with its ``key=`` option set to ``value`` (removed when None), the other options kept in order."""
    head, _, query = spec.partition("?")
    options = [o for o in query.split("&") if o and o.partition("=")[0] != key]
    if value is not None:
        options.append(f"{key}={value}")
    return head + ("?" + "&".join(options) if options else "")


def _query_get(spec: str, key: str) -> str | None:
    for option in spec.partition("?")[2].split("&"):
        k, sep, v = option.partition("=")
        if sep and k == key:
            return v
    return None


def held_out_split(spec: str) -> str:
    """The test split of a source given by its training split (other specs unchanged)."""
    return _query_replace(spec, "split", "test") if _query_get(spec, "split") == "train" else spec


def target_domain_source(config: Any, controls: Mapping[str, Any], algorithm: Any = None) -> str | None:
    """The data source of the domain the translations land in, where the run's config says it (module docstring),
    at its held-out split; None where it does not. A translator whose domains are data streams (ComboGAN, UNIT,
    XGAN: ``names`` and ``domain_streams``) names the stream of its ``to`` domain."""
    data = config.data
    direction = controls.get("direction")
    streams = data.stream_configs()
    if direction is not None and "b" in streams:
        return held_out_split(streams["b"].source if direction == "AtoB" else data.source)
    to = controls.get("to")
    if to is not None and hasattr(algorithm, "domain_streams") and hasattr(algorithm, "domain_index"):
        stream = algorithm.domain_streams[algorithm.domain_index(to, "to")]
        return held_out_split(data.source if stream == "main" else streams[stream].source)
    if to is not None and _query_get(data.source, "domains") is not None:
        # "plain" in a domains= list is the source's own images: no domain= (and the evaluator cached for it)
        name = str(to).rpartition("/")[2]          # DATASET/NAME: a name two datasets share, qualified
        domain = None if name == "plain" else name
        return held_out_split(_query_replace(_query_replace(data.source, "domains", None), "domain", domain))
    return None


def paired_target_domain(spec: str) -> str | None:
    """The domain a held-out set's ``target`` field is in, where its spec says so (``domain=NAME&paired=1``: the
    images with their true counterparts in domain NAME), else None."""
    return _query_get(spec, "domain") if _query_get(spec, "paired") not in (None, "0", "false") else None


def _paired_domain_index(algorithm: Any, spec: str) -> int | None:
    """The index of the translator's domain that ``spec``'s true counterparts are in (by name), else None."""
    domain = paired_target_domain(spec)
    names = list(getattr(algorithm, "names", ()) or ())
    return names.index(domain) if domain is not None and domain in names else None


def default_controls(algorithm: Any, controls: Mapping[str, Any], held_out: str | None = None) -> dict[str, Any]:
    """The controls given, with the default route filled in unless one is given: for a translator of more than two
    domains whose held-out set has true counterparts in a domain it names (ComboGAN's
    ``mnist5k?split=test&domain=edges&paired=1``), ``to`` that domain, so the paired figures compare like with
    like; else ``direction`` AtoB for two-domain translators (their default)."""
    out = {k: v for k, v in controls.items() if v is not None}
    if "direction" in out or "to" in out:
        return out
    paired_index = _paired_domain_index(algorithm, held_out) if held_out else None
    if ("to" in algorithm.translate_controls and paired_index is not None
            and len(getattr(algorithm, "names", ())) > 2 and "from_domain" not in out):
        out["to"] = algorithm.names[paired_index]
    elif "direction" in algorithm.translate_controls:
        out["direction"] = "AtoB"
    return out


def truth_in_to_domain(algorithm: Any, spec: str, fields: Mapping[str, torch.Tensor],
                       controls: Mapping[str, Any]) -> torch.Tensor | None:
    """The held-out set's ``target`` where the translations go ``to`` the domain it is known to be in (its spec
    says ``domain=NAME&paired=1``) from the held-out images' own domain (``from_domain`` unset or 0), else None."""
    paired_index = _paired_domain_index(algorithm, spec)
    if paired_index is None or "target" not in fields or controls.get("to") is None:
        return None
    if controls.get("from_domain") not in (None, 0, "0", algorithm.names[0]):
        return None
    return fields["target"] if algorithm.domain_index(controls["to"], "to") == paired_index else None


def load_held_out(model: Any, spec: str | None, n: int | None, seed: int) -> tuple[str, Any]:
    """The held-out dataset (``spec``, else the run's ``data.held_out``) at the run's geometry; the first ``n`` of
    a seeded permutation when ``n`` is smaller than the set (kept in the set's order)."""
    from ..config import HELD_OUT
    from ..data import load_source, prepare
    cfg = model.config
    streams = cfg.data.stream_configs()
    if spec is None:
        if HELD_OUT not in streams:
            raise ConfigError(f"run {model.run_dir} has no data.held_out to evaluate its translations on; pass --input "
                              "SOURCE (held-out images, with their true counterparts as a `target` field where they "
                              "exist, e.g. 'aligned:DIR?split=val')")
        spec = streams[HELD_OUT].source
    geometry = streams.get(HELD_OUT)
    size, channels = (geometry.image_size, geometry.channels) if geometry is not None else \
        (cfg.data.image_size, cfg.data.channels)
    ds = prepare(load_source(spec, seed=0), size, channels)
    if ds.kind != "image":
        raise DataError(f"--input {spec} holds {ds.kind}s; a translation run is evaluated on images")
    if n is not None and n < len(ds):
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        from ..data import Dataset
        ds = Dataset(x=ds.x[idx], y=None if ds.y is None else ds.y[idx], name=ds.name, kind=ds.kind,
                     class_names=ds.class_names, meta=dict(ds.meta),
                     fields={k: v[idx] for k, v in ds.fields.items()})
    return spec, ds


def baseline_images(inputs: torch.Tensor, truth: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """What a translator that does nothing would output: the input ("copy") where it has the truth's shape, else its
    bicubic upsampling to the truth's size ("bicubic") where only the size differs by a whole factor; else None."""
    if inputs.shape == truth.shape:
        return "copy", inputs
    (c, h, w), (tc, th, tw) = inputs.shape[1:], truth.shape[1:]
    if c == tc and th % h == 0 and tw % w == 0 and th // h == tw // w:
        up = F.interpolate(inputs.float(), size=(th, tw), mode="bicubic", align_corners=False)
        return "bicubic", up.round().clamp(0, 255).to(torch.uint8)
    return None


def parse_translation_metrics(spec: str | Sequence[str] | None) -> list[str] | None:
    if spec is None:
        return None
    names = [m.strip().lower() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
    bad = [m for m in names if m not in TRANSLATION_METRICS]
    if bad or not names:
        raise ConfigError(f"unknown metric '{bad[0] if bad else spec}' for a translation run; choose from "
                          f"{', '.join(TRANSLATION_METRICS)}")
    return names


def evaluate_translation(model: Any, metrics: str | Sequence[str] | None = None, input_spec: str | None = None,
                         n: int | None = None, seed: int = 0, ref: str | None = None, features: str = "domain",
                         inception_weights: str | None = None, device: str = "cpu",
                         **controls: Any) -> dict[str, Any]:
    """The module docstring's figures for a loaded translation ``Model`` (a flat, JSON-ready dict).

    ``metrics`` None measures what the data allows: the paired figures where the held-out set has true
    counterparts, content where its images have labels and the target domain is known, and FID where that domain
    has at least 100 real images and the held-out set 100 inputs."""
    asked = parse_translation_metrics(metrics)
    algo = model.algorithm
    if not is_translator(algo):
        raise ConfigError(f"run {model.run_dir} ({algo.name}) generates from noise; this evaluation is for "
                          "translation runs")
    targets = algo.evaluation_targets() if not any(controls.get(k) is not None for k in algo.translate_controls) \
        else None
    if targets:
        if ref is not None:
            raise ConfigError(f"--ref names the real images of one target domain, and '{algo.name}' is evaluated "
                              f"on each of {', '.join(map(str, targets))} in turn: give --to DOMAIN with --ref")
        per_domain = {str(t): evaluate_translation(model, metrics, input_spec, n, seed, None, features,
                                                   inception_weights, device, **{**controls, "to": t}) for t in targets}
        return mean_over_targets(per_domain)
    spec, ds = load_held_out(model, input_spec, n, seed)
    controls = default_controls(algo, controls, spec)
    inputs, truth = algo.evaluation_pairs(ds.x, ds.fields, **controls)
    if truth is None:
        truth = truth_in_to_domain(algo, spec, ds.fields, controls)
    want = tuple(model.input_shape(**controls))
    if tuple(inputs.shape[1:]) != want:
        raise DataError(f"--input {spec} gives {'x'.join(map(str, inputs.shape[1:]))} inputs but the model translates "
                        f"{'x'.join(map(str, want))}; give held-out images of the training data's size and channels")
    if len(inputs) < 2:
        raise DataError(f"--input {spec} holds {len(inputs)} image(s); evaluation needs at least 2")
    outputs = model.translate(inputs, seed=seed, **controls)
    target_ref = ref or target_domain_source(model.config, controls, algo)
    result: dict[str, Any] = {"target": str(model.run_dir), "step": model.step, "n": len(outputs), "input": spec,
                              "evaluation": "translation", **{k: v for k, v in controls.items()
                                                               if isinstance(v, (str, int, float))}}
    if "attrs" in controls:
        result["attrs"] = list(controls["attrs"])
    notes: list[str] = []

    has_truth = truth is not None and tuple(truth.shape) == tuple(outputs.shape)
    if truth is not None and not has_truth:
        notes.append(f"the true counterparts are {'x'.join(map(str, truth.shape[1:]))}, the outputs "
                     f"{'x'.join(map(str, outputs.shape[1:]))}: no paired figures")
    base = baseline_images(inputs, truth) if has_truth else None
    paired = [m for m in PAIRED if m in asked] if asked is not None else (list(PAIRED) if has_truth else [])
    if paired:
        if not has_truth:
            why = ("with --to the held-out set's target is not known to be in that domain" if "to" in controls
                   else "give held-out images with a `target` field (e.g. aligned:DIR?split=val, "
                        "mnist5k?split=test&domain=edges&paired=1)")
            raise DataError(f"paired metrics ({', '.join(paired)}) compare each output with its true counterpart, but "
                            f"--input {spec} has none for these outputs; {why}")
        from .paired import paired_metrics
        got = paired_metrics(outputs, truth)
        result.update({k: got[k] for k in ("l1", "psnr", "ssim", "channels")})
        if base is not None:
            name, images = base
            got = paired_metrics(images, truth)
            result.update({"baseline": name, **{f"baseline_{k}": got[k] for k in ("l1", "psnr", "ssim")}})

    labels = ds.y
    if asked is not None and "content" in asked:
        if labels is None:
            raise DataError(f"content preservation reads the digit (class) of each output against its input's label, "
                            f"but --input {spec} has no labels")
        if target_ref is None:
            raise ConfigError("content preservation needs the target domain's labelled data to train its reader: "
                              "pass --ref SOURCE (real images of the domain the outputs are in)")
    if labels is not None and target_ref is not None and (asked is None or "content" in asked):
        from .content import content_classifier, content_preservation
        try:
            clf = content_classifier(target_ref, seed=0)
        except DataError as e:
            if asked is not None:
                raise
            clf = None
            notes.append(f"no content figure: {e}")
        if clf is not None:
            got = content_preservation(clf, outputs, labels)
            result.update({"content": got["content_accuracy"], "content_chance": got["chance"],
                           "content_classifier": got["classifier"],
                           "content_classifier_accuracy": got["classifier_accuracy"],
                           "baseline_content_of": base[0] if base is not None else "input",
                           "baseline_content": content_preservation(clf, base[1] if base is not None else inputs,
                                                                    labels)["content_accuracy"]})
            if has_truth:
                result["content_ceiling"] = content_preservation(clf, truth, labels)["content_accuracy"]

    feature = [m for m in FEATURE if m in asked] if asked is not None else \
        (["fid"] if target_ref is not None and len(outputs) >= FID_MIN and labels is not None else [])
    if feature:
        if target_ref is None:
            raise ConfigError(f"{', '.join(feature)} compare the outputs with real images of the target domain: pass "
                              "--ref SOURCE")
        from .evaluate import Samples, evaluate
        got = evaluate(Samples("image", outputs, None, str(model.run_dir)), feature, ref=target_ref,
                       features=features, inception_weights=inception_weights, device=device, seed=seed)
        result.update({k: v for k, v in got.items() if k not in ("target", "n", "step")})
    if target_ref is not None:
        result["ref"] = target_ref
    if notes:
        result["notes"] = notes
    return result


def mean_over_targets(per_domain: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One result for a sweep over target domains: each figure that every domain has, averaged, beside the
    per-domain results (``per_domain``)."""
    results = list(per_domain.values())
    first = results[0]
    out: dict[str, Any] = {k: first[k] for k in ("target", "step", "n", "input", "evaluation", "features",
                                                 "baseline", "baseline_content_of") if k in first}
    out["to"] = "each of " + ", ".join(per_domain) + " (the mean)"
    for key, value in first.items():
        if key in out or key in ("to", "n_ref") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if all(isinstance(r.get(key), (int, float)) for r in results):
            out[key] = sum(float(r[key]) for r in results) / len(results)
    out["per_domain"] = {name: dict(r) for name, r in per_domain.items()}
    return out


def format_translation_table(result: Mapping[str, Any]) -> str:
    """The figures as a two-column text table: each beside its baseline (and the content ceiling)."""
    from ..report.evals import sig3
    rows: list[tuple[str, str]] = [("target", str(result.get("target"))), ("step", str(result.get("step"))),
                                   ("inputs", f"{result.get('n')} held-out images of {result.get('input')}")]
    for key in ("direction", "to", "attrs"):
        if key in result:
            rows.append((key, str(result[key])))
    base = result.get("baseline")
    for key, label in (("l1", "L1"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
        if key in result:
            extra = f"   ({base}: {sig3(result[f'baseline_{key}'])})" if f"baseline_{key}" in result else ""
            rows.append((label, sig3(result[key]) + extra))
    if "content" in result:
        extra = f"   ({result['baseline_content_of']}: {sig3(result['baseline_content'])}"
        extra += f", true counterparts: {sig3(result['content_ceiling'])})" if "content_ceiling" in result else ")"
        rows.append(("content", sig3(result["content"]) + extra + f", chance {sig3(result['content_chance'])}"))
        if "content_classifier" in result:
            rows.append(("read by", f"{result['content_classifier']} classifier "
                                    f"({sig3(100 * result['content_classifier_accuracy'])} % held-out accuracy)"))
    for key, label in (("fid", "FID"), ("kid", "KID (x10^3)")):
        if key in result:
            value = result[key] * (1e3 if key == "kid" else 1.0)
            against = result.get("ref") or "each target domain's held-out images"
            rows.append((label, sig3(value) + f"   (against {against}, {result.get('features')} features)"))
    for name, one in (result.get("per_domain") or {}).items():
        figures = [f"{label} {sig3(one[key])}" + (f" ({one.get('baseline_content_of', 'input')} "
                                                   f"{sig3(one['baseline_content'])})" if key == "content" else "")
                   for key, label in (("l1", "L1"), ("psnr", "PSNR"), ("ssim", "SSIM"), ("content", "content"),
                                      ("fid", "FID")) if key in one]
        rows.append((f"to {name}", ", ".join(figures)))
    for note in result.get("notes", []):
        rows.append(("note", note))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
