"""The one Registry class and the four registries made of it: algorithms, objectives, architectures, data sources."""
from __future__ import annotations

import pytest

from ganforge.algorithms import algorithm_class, algorithm_names, register_algorithm
from ganforge.algorithms.base import ALGORITHMS, Algorithm
from ganforge.data import load_source, source_help
from ganforge.data.base import SOURCES
from ganforge.errors import ConfigError, DataError
from ganforge.models import NETWORKS, architectures, network_class
from ganforge.objectives import OBJECTIVES, objective_class, objective_names
from ganforge.registry import Registry
from tests.conftest import run_cli


def test_register_names_get_and_iterate() -> None:
    reg: Registry[int] = Registry("widget")
    assert reg.add("beta", 2, "the second") == 2

    @reg.register("alpha", "the first")
    def alpha() -> int:
        return 1

    assert reg.names() == list(reg) == ["alpha", "beta"]          # sorted, whatever the registration order
    assert reg.get("alpha") is alpha and reg.get("beta") == 2
    assert "beta" in reg and "gamma" not in reg and len(reg) == 2
    assert reg.describe() == {"alpha": "the first", "beta": "the second"}
    assert reg.info("beta") == "the second"
    assert reg.items() == [("alpha", alpha), ("beta", 2)]
    reg.add("beta", 3)                                               # a later registration replaces
    assert reg.get("beta") == 3 and len(reg) == 2
    with pytest.raises(TypeError, match="non-empty name"):
        reg.add("", 4)


def test_unknown_names_are_one_line_errors_with_a_hint_and_the_known_names() -> None:
    reg: Registry[int] = Registry("widget")
    reg.add("sprocket", 1)
    reg.add("gear", 2)
    with pytest.raises(ConfigError) as e:
        reg.get("sprokett")
    assert str(e.value) == "unknown widget 'sprokett' (did you mean 'sprocket'?); known: gear, sprocket"
    with pytest.raises(ConfigError) as e:
        reg.get("zzz", where="parts.A")
    assert str(e.value) == "parts.A: unknown widget 'zzz'; known: gear, sprocket"
    with pytest.raises(ConfigError, match="known: gear, sprocket"):
        reg.info("zzz")
    data: Registry[int] = Registry("source", error=DataError, shown=lambda name: f"{name}:...")
    data.add("folder", 1)
    with pytest.raises(DataError) as e:
        data.get("foldr", spelled="foldr:imgs/")
    assert str(e.value) == "unknown source 'foldr:imgs/' (did you mean 'folder:...'?); known: folder:..."
    assert str(Registry("widget").unknown("x")) == "unknown widget 'x'; known: none"


def test_the_library_registries_are_registries_behind_the_old_functions() -> None:
    assert isinstance(ALGORITHMS, Registry) and algorithm_names() == ALGORITHMS.names()
    assert set(algorithm_names()) >= {"adversarial", "conditional", "acgan", "infogan", "stackedgan", "triplegan"}
    assert algorithm_class("infogan") is ALGORITHMS.get("infogan") and ALGORITHMS.info("infogan").startswith("seed")
    assert isinstance(OBJECTIVES, Registry) and objective_names() == OBJECTIVES.names()
    assert objective_class("wgan-gp").name == "wgan-gp" and OBJECTIVES.info("wgan-gp") == objective_class("wgan-gp").source
    assert set(NETWORKS) >= {"generator", "discriminator"} and all(isinstance(r, Registry) for r in NETWORKS.values())
    assert network_class("generator", "dcgan-book", "networks.G") is NETWORKS["generator"].get("dcgan-book")
    assert architectures()[("generator", "dcgan-book")] == NETWORKS["generator"].info("dcgan-book")
    assert len(architectures()) == sum(len(r) for r in NETWORKS.values())
    assert isinstance(SOURCES, Registry) and list(source_help()) == SOURCES.names()
    assert {"mnist5k", "toy", "idx", "folder", "npz", "cifar10"} <= set(SOURCES)


def test_the_old_error_texts_keep_their_content() -> None:
    with pytest.raises(ConfigError, match=r"^unknown objective 'nonsaturate' \(did you mean 'nonsaturating'\?\); "
                                          r"known: began, ebgan, "):
        objective_class("nonsaturate")
    with pytest.raises(ConfigError, match=r"^unknown algorithm 'acgn' \(did you mean 'acgan'\?\); known: acgan, "):
        algorithm_class("acgn")
    with pytest.raises(ConfigError) as e:
        network_class("generator", "dcgan-bok", "networks.G")
    # matched against the generators only: no discriminator architecture is offered
    assert str(e.value).startswith("networks.G: unknown generator architecture 'dcgan-bok' (did you mean 'dcgan-book'?)")
    assert "cgan-book" not in str(e.value).replace("dcgan-book", "")
    with pytest.raises(DataError) as e:
        load_source("mnist6k")
    assert str(e.value).startswith("unknown data source 'mnist6k' (did you mean 'mnist5k'?); known: ")
    known = str(e.value).split("known: ")[1].split(", ")
    assert "cifar10:..." in known and "toy:..." in known and "mnist5k" in known and "photos" in known
    assert "\n" not in str(e.value)


def test_register_algorithm_adds_to_the_registry() -> None:
    class Probe(Algorithm):
        name = "probe-for-registry-test"
        source = "tests/unit/test_registry.py"

    try:
        assert register_algorithm(Probe) is Probe
        assert algorithm_class("probe-for-registry-test") is Probe and "probe-for-registry-test" in algorithm_names()
    finally:
        ALGORITHMS._entries.pop("probe-for-registry-test", None)     # leave the library's registry as it was
    assert "probe-for-registry-test" not in ALGORITHMS


def test_list_all_prints_every_registry_entry(capsys) -> None:
    code, out, _ = run_cli(["list", "--all"], capsys)
    assert code == 0
    for name in [*SOURCES, *OBJECTIVES, *ALGORITHMS] + [arch for r in NETWORKS.values() for arch in r]:
        assert name in out, name
