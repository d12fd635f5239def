"""Recipes, overrides and validation: every recipe builds, and every bad key/value is one readable line."""
from __future__ import annotations

import dataclasses

import pytest

from ganforge.algorithms import DataInfo, algorithm_class
from ganforge.build import build_algorithm
from ganforge.config import (apply_overrides, build_config, coerce, load_config, parse_set, read_recipe,
                             recipe_names)
from ganforge.errors import ConfigError

MNIST = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10, class_names=tuple("0123456789"))
TOY = DataInfo(kind="vector", sample_shape=(2,), num_classes=8)


def recipe_data(cfg) -> DataInfo:
    """A description of the data a recipe names, without loading it (the paper recipes name folders a user brings):
    MNIST's, at the recipe's image size and channels, with the fields its algorithm needs (``lowres`` a quarter of
    the size) and each of its data streams described alike."""
    cls = algorithm_class(cfg.algorithm.name)
    size = cfg.data.image_size or (32 if cls.samples_from_data else 28)   # translators: powers of two
    shape = (cfg.data.channels or 1, size, size)

    def described(keys) -> DataInfo:
        fields = {k: (shape[0], size // 4, size // 4) if k == "lowres" else shape for k in keys}
        return DataInfo(kind="image", sample_shape=shape, num_classes=10, class_names=tuple("0123456789"),
                        keys=("image", "label", *fields), field_shapes=fields)

    main = described(cls.needs_keys)
    streams = {n: described(cls.stream_needs_keys.get(n, ())) for n in cfg.data.stream_configs()}
    return dataclasses.replace(main, streams=streams)


def test_every_recipe_has_source_and_builds():
    names = recipe_names()
    assert {"dcgan-mnist", "dcgan-fashion", "gan-mlp-mnist", "gan-toy"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.description and cfg.source, name
        info = TOY if cfg.data.source.startswith("toy:") else recipe_data(cfg)
        algo = build_algorithm(cfg, info)
        assert set(algo.roles) <= set(algo.nets)   # an algorithm may keep extra state modules (TripleGAN's labelled subset)


def test_book_dcgan_recipe_values_are_the_books():
    cfg = load_config("dcgan-mnist")
    assert cfg.optim["D"].name == "rmsprop" and cfg.optim["D"].lr == 2e-4 and cfg.optim["D"].decay == 6e-8
    assert cfg.optim["G"].lr == 1e-4 and cfg.optim["G"].decay == 3e-8 and cfg.optim["G"].alpha == 0.9
    assert cfg.train.batch_size == 64 and cfg.train.steps == 40000
    assert cfg.algorithm.params["latent_dist"] == "uniform" and cfg.algorithm.params["d_update"] == "combined"


def test_overrides_and_yaml_value_parsing():
    o = parse_set(["train.steps=12", "optim.D.lr=1e-4", "optim.D.betas=[0.0, 0.9]", "data.source=toy:ring8"])
    assert o == {"train.steps": 12, "optim.D.lr": "1e-4", "optim.D.betas": [0.0, 0.9], "data.source": "toy:ring8"}
    cfg = load_config("dcgan-mnist", o)
    assert cfg.train.steps == 12 and cfg.optim["D"].lr == 1e-4 and cfg.optim["D"].betas == (0.0, 0.9)
    raw = read_recipe("gan-toy")
    again = apply_overrides(raw, {"networks.G.hidden": [8]})
    assert again["networks"]["G"]["hidden"] == [8] and raw["networks"]["G"]["hidden"] == [128, 128, 128]


def test_resolved_config_round_trips():
    cfg = load_config("dcgan-fashion")
    assert build_config(cfg.to_dict()) == cfg


@pytest.mark.parametrize("override, fragment", [
    ({"train.batchsize": 3}, "unknown config key 'train.batchsize' (did you mean 'batch_size'?)"),
    ({"train.steps": "many"}, "train.steps must be int"),
    ({"train.steps": 0}, "train.steps must be >= 1"),
    ({"train.steps": 2.5}, "train.steps must be int"),
    ({"optim.D.lr": -1}, "optim.D.lr must be > 0"),
    ({"optim.D.name": "adamm"}, "did you mean 'adam'"),
    ({"data.channels": 2}, "data.channels must be 1 or 3"),
    ({"traing.steps": 3}, "did you mean 'train'"),
    ({"optim.D.betas": [0.5]}, "optim.D.betas must have 2 items"),
    ({"train.ema.enabled": "yes"}, "train.ema.enabled must be bool"),
])
def test_bad_values_name_their_key(override, fragment):
    with pytest.raises(ConfigError) as e:
        load_config("dcgan-mnist", override)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("override, fragment", [
    ({"networks.G.filterz": [1]}, "unknown config key 'networks.G.filterz' (did you mean 'filters'?)"),
    ({"networks.G.latent_dim": 5}, "set algorithm.latent_dim instead"),
    ({"networks.D.arch": "dcgan-bok"}, "did you mean 'dcgan-book'"),
    ({"objective.name": "nonsaturate"}, "did you mean 'nonsaturating'"),
    ({"objective.real_label": 1.5}, "objective.real_label must be in (0, 1]"),
    ({"algorithm.n_critic": 0}, "n_critic must be >= 1"),
    ({"algorithm.d_update": "both"}, "algorithm.d_update must be one of"),
    ({"algorithm.latent_dims": 3}, "did you mean 'latent_dim'"),
    ({"networks.X": {"arch": "mlp"}}, "unknown network 'networks.X'"),
    ({"optim.Q": {"lr": 1e-3}}, "unknown optimizer group"),
])
def test_component_parameters_are_checked_against_constructors(override, fragment):
    cfg = load_config("dcgan-mnist", override)
    with pytest.raises(ConfigError) as e:
        build_algorithm(cfg, MNIST)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_image_size_the_model_cannot_take():
    cfg = load_config("dcgan-mnist")
    with pytest.raises(ConfigError, match="divisible by 4.*data.image_size=28"):
        build_algorithm(cfg, DataInfo(kind="image", sample_shape=(1, 30, 30), num_classes=10))


def test_unknown_recipe_suggests_a_name():
    with pytest.raises(ConfigError, match="unknown recipe 'dcgan-mnst' \\(did you mean 'dcgan-mnist'\\?\\)"):
        read_recipe("dcgan-mnst")


def test_coerce_accepts_yaml11_exponent_strings_and_rejects_bools():
    assert coerce("1e-4", float, "x") == 1e-4
    assert coerce(3, float, "x") == 3.0 and isinstance(coerce(3, float, "x"), float)
    with pytest.raises(ConfigError):
        coerce(True, int, "x")
    assert coerce(None, int | None, "x") is None


def test_set_syntax_errors():
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["train.steps"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config("dcgan-mnist", {"train.steps.x": 1})
