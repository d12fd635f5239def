"""The texts ganforge's recipes follow, by name, and the recipe families ``ganforge list`` groups them in.

Inside the code and the recipes' provenance comments the five source texts are called "seed 000" .. "seed 004"
(the files they were read from). Users read "seed" as a random seed, so whatever a user sees names the text
instead (``name_sources``). What each one is (from the headers of the texts and the two specifications that
describe them):

* seed 000: R. Atienza, *Advanced Deep Learning with TensorFlow 2 and Keras*, ch. 5 "Improved GANs" (WGAN,
  LSGAN, ACGAN), in Chinese translation, with the book's ``lib/gan.py``;
* seed 001: M. Elgendy, *Deep Learning for Vision Systems*, ch. 8 "Generative adversarial networks", in
  Chinese translation (its DCGAN and the Fashion-MNIST project);
* seed 002: "Generative Models: GANs V2.0" (2019-03-25), a Chinese survey e-book of 31 GAN papers that follows
  Hung-yi Lee's lectures;
* seed 003: a CSDN blog post, "Learning Notes: Generative Adversarial Networks" by JackyTintin (2017-03-14):
  basic GAN, LSGAN, WGAN, GLS-GAN;
* seed 004: Atienza's book, ch. 6 "Disentangled Representation GANs" (InfoGAN, StackedGAN; chapter 10 in the
  translation).
"""
from __future__ import annotations

import re
from typing import Any

BOOKS = {
    "000": "Atienza ch. 5",
    "001": "Elgendy ch. 8",
    "002": "the GAN survey e-book",
    "003": "the GAN learning notes",
    "004": "Atienza ch. 6",
}
# Printed under `ganforge list --all`, where the short names above appear.
LEGEND = [
    "Atienza: R. Atienza, Advanced Deep Learning with TensorFlow 2 and Keras (ch. 4-6)",
    "Elgendy: M. Elgendy, Deep Learning for Vision Systems (ch. 8)",
    "the GAN survey e-book: 'Generative Models: GANs V2.0' (2019), a Chinese survey of 31 GAN papers",
    "the GAN learning notes: JackyTintin, 'Learning Notes: Generative Adversarial Networks', CSDN blog, 2017",
]


def name_sources(text: str) -> str:
    """``seed 002 part 1 section 6 (spec 6.2)`` -> ``the GAN survey e-book part 1 section 6``: the seed numbers
    replaced by the texts' names, the specification references and [R] tags (internal provenance) dropped."""
    text = re.sub(r"\bseed (00[0-4])\b", lambda m: BOOKS[m.group(1)], text)
    text = re.sub(r"\s*\(spec [^()]*\)", "", text)
    text = re.sub(r"[;,]\s*spec [\d.]+(?:-[\d.]+)?", "", text)
    text = re.sub(r",?\s*\[[RKT]\]", "", text)
    return text


FAMILIES = [
    ("image", "Unconditional image GANs: architectures and training techniques"),
    ("architectures", "Architectures: ResNet, self-attention, BigGAN, Laplacian pyramid, progressive and style-based"),
    ("objectives", "Objectives and regularizers on MNIST digits"),
    ("toy", "2-D toy mixtures (mode coverage; toy:ring8, toy:grid25)"),
    ("conditional", "Conditional on class labels (and semi-supervised)"),
    ("disentangled", "Disentangled and stacked representations"),
    ("translation", "Image-to-image translation and super-resolution (paired, unpaired, multi-domain)"),
    ("encoders", "Encoders and text: BiGAN / ALI, VAE-GAN, text-to-image (GAN-INT-CLS), StackGAN / StackGAN++"),
]
# The architecture family (issue 13): recipes of these algorithms or generator architectures, conditional or not.
ARCHITECTURE_ALGORITHMS = ("biggan", "s3gan", "lapgan", "progan", "stylegan")
ARCHITECTURE_NETWORKS = ("sngan-resnet", "sagan", "biggan", "lapgan", "progan", "stylegan")
# Families that translate images (samples_from_data): their recipes are listed together whatever their objective.
TRANSLATION_ALGORITHMS = ("pix2pix", "cyclegan", "srgan", "stargan", "cogan", "unit", "combogan", "xgan")
# Families that learn an encoder or condition on text (issue 14).
ENCODER_TEXT_ALGORITHMS = ("bigan", "ali", "vaegan", "vae", "gan-int-cls", "stackgan", "stackgan2",
                           "stackgan2-unconditional")


def _name(section: Any, key: str = "name") -> str:
    return str(section.get(key, "")) if isinstance(section, dict) else str(section or "")


def recipe_family(raw: dict[str, Any]) -> str:
    """The family of a raw recipe: the algorithm (or the generator's architecture) decides architecture, conditional
    and disentangled ones, the data the toy ones; an adversarial image recipe that changes the loss or constrains D
    belongs with the objectives."""
    algorithm = _name(raw.get("algorithm", "adversarial"))
    generator = (raw.get("networks") or {}).get("G")
    if algorithm in ARCHITECTURE_ALGORITHMS or _name(generator, "arch") in ARCHITECTURE_NETWORKS:
        return "architectures"
    if algorithm in ("infogan", "stackedgan"):
        return "disentangled"
    if algorithm in ("conditional", "acgan", "triplegan"):
        return "conditional"
    if algorithm in TRANSLATION_ALGORITHMS:
        return "translation"
    if algorithm in ENCODER_TEXT_ALGORITHMS:
        return "encoders"
    if _name(raw.get("data") or {}, "source").startswith("toy:"):
        return "toy"
    objective = _name(raw.get("objective", "nonsaturating"))
    networks = raw.get("networks") or {}
    constrained = any(isinstance(n, dict) and n.get("spectral_norm") for n in networks.values())
    if objective in ("nonsaturating", "minimax") and not constrained:
        return "image"
    return "objectives"
