"""Digit captions and the pretrained text encoder (issue 14): the measuring functions measure what they say on drawn
shapes, every caption's words agree with its digit's measured attributes, the encoder pretrained on real captions
retrieves them far above chance, deterministically, from its cache, and keeps its vocabulary with its weights."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.data import load_source, prepare
from ganforge.data.digit_captions import NUMBER_WORDS, digit_size, measure, slant, stroke_thickness
from ganforge.errors import ConfigError, DataError
from ganforge.metrics.text_retrieval import r_precision
from ganforge.models.text_encoder import TextEncoder, pretrained_text_encoder, symmetric_matching_loss

from conftest import learned

pytestmark = pytest.mark.usefixtures("one_thread")

# A small encoder: 900 pairs of the held-out digits at 16 px, 8 epochs of batch 32 (a few seconds at one thread). The
# GAN-INT-CLS integration test trains on the same data with the same encoder settings, so the session's cache serves it.
SMALL_SOURCE = "digit-captions?split=test&captions=1"
SMALL_SIZE = 16
SMALL = {"vocab_size": 64, "embed_dim": 32, "word_dim": 16, "epochs": 8, "batch_size": 32}


def small_encoder(use_cache: bool = True):
    ds = prepare(load_source(SMALL_SOURCE), SMALL_SIZE, None)
    return pretrained_text_encoder(ds, seed=0, use_cache=use_cache, **SMALL)


def bars(width: int, shear: float = 0.0, side: int = 28) -> torch.Tensor:
    """A vertical bar 16 px tall and ``width`` px wide (uint8 1 x 1 x side x side), its top shifted ``shear`` px per
    row upward (to the right for shear > 0)."""
    img = torch.zeros(1, 1, side, side, dtype=torch.uint8)
    for r in range(6, 22):
        c = int(round(12 + shear * (21 - r)))
        img[0, 0, r, c:c + width] = 255
    return img


def test_measuring_functions_on_drawn_shapes():
    # a straight bar of width w: mean stroke width 2 * area / boundary = w (boundary pixels: the 2 x 16 sides)
    assert stroke_thickness(bars(2)).item() == pytest.approx(2.0, abs=0.01)
    thick = stroke_thickness(bars(4)).item()
    assert 3.0 < thick < 4.5 and thick > stroke_thickness(bars(2)).item()
    assert abs(slant(bars(3)).item()) < 1e-6
    assert slant(bars(3, 0.4)).item() == pytest.approx(0.4, abs=0.05)        # top to the right: leaning right
    assert slant(bars(3, -0.4)).item() == pytest.approx(-0.4, abs=0.05)
    assert digit_size(bars(3)).item() == 16 * 3
    empty = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    assert stroke_thickness(empty).tolist() == [0.0, 0.0] and digit_size(empty).tolist() == [0.0, 0.0]
    # float images in [0, 1] measure like uint8
    assert measure(bars(3).float() / 255)["slant"].item() == pytest.approx(slant(bars(3)).item())


def test_captions_say_what_the_digits_measure():
    ds = load_source("digit-captions?split=test")
    assert len(ds) == 3000 and ds.keys() == ("image", "label", "text") and ds.x.shape[1:] == (1, 28, 28)
    cuts, attrs = ds.meta["cuts"], ds.meta["attributes"]
    again = measure(ds.x)
    for name in ("thickness", "slant", "size"):      # the values kept in meta are the measuring functions' own
        assert torch.equal(again[name], attrs[name])
    seen = {"thick": 0, "thin": 0, "leaning right": 0, "leaning left": 0}
    for i, caption in enumerate(ds.meta["captions"]):
        label = int(ds.y[i])
        assert {NUMBER_WORDS[label], str(label)} & set(caption.replace(",", " ").split()), caption
        words = f" {caption.replace(',', ' ')} "
        if " thick " in words:
            seen["thick"] += 1
            assert attrs["thickness"][i] > cuts["thickness"][1]
        if " thin " in words:
            seen["thin"] += 1
            assert attrs["thickness"][i] <= cuts["thickness"][0]
        if "leaning right" in caption:
            seen["leaning right"] += 1
            assert attrs["slant"][i] > cuts["slant"][1]
        if "leaning left" in caption:
            seen["leaning left"] += 1
            assert attrs["slant"][i] <= cuts["slant"][0]
    assert min(seen.values()) > 150, seen
    # several phrasings per digit, the same every time; the text field encodes them
    assert len(set(ds.meta["captions"][:3])) == 3
    assert load_source("digit-captions?split=test").meta["captions"] == ds.meta["captions"]
    # token ids mean the same words whatever the split or the number of phrasings
    assert load_source("digit-captions?split=train&captions=1").meta["vocab"] == ds.meta["vocab"]
    from ganforge.data.text import decode
    assert decode(ds.fields["text"][:1], ds.meta["vocab"])[0] == ds.meta["captions"][0].replace(",", "")


@pytest.mark.parametrize("spec, fragment", [
    ("digit-captions?split=dev", "unknown split 'dev'"),
    ("digit-captions?captions=9", "?captions=9"),
    ("digit-captions?size=32", "takes only ?split="),
])
def test_bad_digit_caption_specs_are_one_line(spec, fragment):
    with pytest.raises(DataError) as err:
        load_source(spec)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_symmetric_matching_loss_is_damsm_sentence_loss():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    cos = torch.nn.functional.normalize(img, dim=1) @ torch.nn.functional.normalize(txt, dim=1).t()
    logits = 10.0 * cos.double()
    direct = (-(logits.diag() - logits.logsumexp(1)).mean()) + (-(logits.diag() - logits.logsumexp(0)).mean())
    assert symmetric_matching_loss(img, txt).item() == pytest.approx(direct.item(), rel=1e-5)


def test_pretrained_encoder_matches_real_captions_deterministically_and_from_its_cache(capsys, tmp_path, monkeypatch):
    # A cache of its own: in a whole-suite run another test may have trained this encoder into the shared test cache.
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    pair = small_encoder()
    assert "training the text encoder for digit-captions?split=test&captions=1" in capsys.readouterr().err
    assert pair.facts["train_pairs"] == 900 and pair.facts["held_out_pairs"] == 100
    ds = prepare(load_source(SMALL_SOURCE), SMALL_SIZE, None)
    # the text reads the digit: each image's nearest of the ten captions "the digit K, upright" names its label
    tokens, unknown = pair.text.tokenize([f"the digit {k}, upright" for k in range(10)])
    assert unknown == []
    sims = F.normalize(pair.embed_images(ds.x), dim=1) @ F.normalize(pair.embed_text(tokens), dim=1).t()
    accuracy = float((sims.argmax(1) == ds.y).float().mean())
    learned("digit named by the nearest 'the digit K' caption", accuracy, 0.35, chance=0.1)
    # AttnGAN's R-precision: the own caption first among 100 (99 different ones; chance 0.01)
    score = r_precision(pair, ds.x[:500], ds.fields["text"][:500], candidates=100)
    learned("R-precision of the pretrained text encoder on real digit captions", score, 0.1, chance=0.01)
    # cached: the same weights, and no second training message
    cached = small_encoder()
    assert capsys.readouterr().err == ""
    for a, b in zip(pair.text.state_dict().values(), cached.text.state_dict().values()):
        assert torch.equal(a, b)
    assert cached.text.vocab == pair.vocab == ds.meta["vocab"]


def test_the_vocabulary_travels_with_the_weights():
    enc = TextEncoder(vocab_size=8, embed_dim=4, word_dim=3)
    with pytest.raises(ConfigError, match="no vocabulary yet"):
        enc.tokenize(["a thin three"])
    enc.set_vocab(["<pad>", "<unk>", "a", "thin", "three"])
    copy = TextEncoder(vocab_size=8, embed_dim=4, word_dim=3)
    copy.load_state_dict(enc.state_dict())
    tokens, unknown = copy.tokenize(["a thin three", "a purple three purple"])
    assert tokens.tolist() == [[2, 3, 4, 0], [2, 1, 4, 1]] and unknown == ["purple"]
    with pytest.raises(ConfigError, match="vocab_size=9 or more"):
        enc.set_vocab([f"w{i}" for i in range(9)])
    # padding never changes a caption's embedding: the sentence vector is read after its last word
    out = enc(torch.tensor([[2, 3, 4, 0, 0], [2, 3, 4, 0, 0]]))
    assert torch.allclose(out, enc(torch.tensor([[2, 3, 4]])).expand(2, -1))


def test_a_source_without_captions_is_refused_in_one_line():
    with pytest.raises(DataError) as err:
        pretrained_text_encoder("mnist5k?split=test")
    assert "has no captions" in str(err.value) and "\n" not in str(err.value)
