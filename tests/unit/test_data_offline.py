"""Real data that needs no download: glyphs rendered from installed fonts, colour emoji with their Unicode names,
patches of the photos scikit-image / scikit-learn bundle, and digit domains derived from mnist5k.

The glyph tests use matplotlib's DejaVu and STIX fonts (installed with ganforge everywhere); the CJK and emoji tests
need Debian's font packages (``make fonts``) and skip, saying so, where they are absent."""
from __future__ import annotations

import socket
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import load_source
from ganforge.data import emoji as emoji_mod
from ganforge.data.base import SOURCE_KEYS
from ganforge.data.glyphs import gb2312_level1, matplotlib_font_dir, resolve_font
from ganforge.data.mnist5k import derive, load_mnist5k
from ganforge.data.photos import bundled, downscale
from ganforge.data.text import decode, words
from ganforge.errors import DataError, GanforgeError

from conftest import expect_data_error

CJK = Path("/usr/share/fonts/truetype/arphic/ukai.ttc"), Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
needs_cjk = pytest.mark.skipif(not all(p.is_file() for p in CJK),
                               reason="needs Debian's fonts-arphic-ukai and fonts-wqy-zenhei (make fonts)")
needs_emoji = pytest.mark.skipif(not emoji_mod.DEBIAN_EMOJI_FONT.is_file(),
                                 reason="needs Debian's fonts-noto-color-emoji (make fonts)")




def ink_box(glyph: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of a black-on-white glyph's dark pixels, None if it has none."""
    rows = torch.nonzero((glyph < 128).any(dim=-1)).flatten()
    cols = torch.nonzero((glyph < 128).any(dim=-2)).flatten()
    if len(rows) == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def matched(a: torch.Tensor, b: torch.Tensor) -> float:
    """The share of glyphs of ``a`` whose most similar glyph of ``b`` (correlation of their 5x5-blurred ink, which
    forgives strokes a pixel apart) is the one at the same index: do the two lists hold the same characters?"""
    def unit(g: torch.Tensor) -> torch.Tensor:
        ink = torch.nn.functional.avg_pool2d(255 - g.float().unsqueeze(1), 5, 1, 2).flatten(1)
        ink = ink - ink.mean(1, keepdim=True)
        return ink / ink.norm(dim=1, keepdim=True)
    return float(((unit(a) @ unit(b).T).argmax(1) == torch.arange(len(a))).float().mean())


def extent(glyph: torch.Tensor) -> int:
    top, left, bottom, right = ink_box(glyph)
    return max(bottom - top, right - left) + 1


# -------------------------------------------------------------------------------------------- glyphs
def test_gb2312_level1_is_the_3755_hanzi():
    chars = gb2312_level1()
    assert len(chars) == 3755 and len(set(chars)) == 3755
    assert chars[0] == "啊" and chars[-1] == "座"            # the first and last level-1 characters (rows 16, 55)
    assert all(0x4E00 <= ord(c) <= 0x9FFF for c in chars)   # all CJK unified ideographs


def test_font_names_resolve_to_matplotlibs_bundled_files():
    mpl = matplotlib_font_dir()
    assert mpl is not None
    for name in ("DejaVuSans", "dejavuserif", "DejaVuSansMono", "STIXGeneral"):
        path = resolve_font(name, "glyphs:test")
        assert path.parent == mpl and path.stem.lower() == name.lower()
    expect_data_error(lambda: load_source("glyphs:NoSuchFont"), "'NoSuchFont'", "matplotlib's fonts", "path")
    expect_data_error(lambda: load_source("glyphs:/nowhere/x.ttf"), "/nowhere/x.ttf", "does not exist")


def test_two_fonts_pair_glyphs_by_character():
    ds = load_source("glyphs:DejaVuSans,DejaVuSerif?chars=alnum&size=48")
    assert ds.keys() == ("image", "label", "target")
    assert ds.x.shape == (62, 1, 48, 48) and ds.fields["target"].shape == (62, 1, 48, 48)
    assert ds.meta["chars"] == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    assert [f["name"] for f in ds.meta["fonts"]] == ["DejaVu Sans Book", "DejaVu Serif Book"]
    assert ds.y.tolist() == list(range(62)) and ds.class_names[ds.y[10]] == "A"
    image, target = ds.x[:, 0], ds.fields["target"][:, 0]
    # Black on white: white corners, ink somewhere in every glyph of both fonts, and centred (margins within 2 px).
    for g in (image, target):
        assert (g[:, 0, 0] == 255).all() and (g[:, -1, -1] == 255).all()
        for glyph in g:
            top, left, bottom, right = ink_box(glyph)
            assert abs(top - (47 - bottom)) <= 2 and abs(left - (47 - right)) <= 2
    a = ds.class_names.index("A")
    assert ((image[a] < 128) != (target[a] < 128)).float().mean() > 0.02   # the serif 'A' is another drawing
    # Pairs are by character: each serif glyph looks most like its own sans glyph, for most characters (the
    # exceptions are look-alikes such as l / I / 1 and o / O / 0; a shuffled pairing scores ~1/62).
    assert matched(target, image) > 0.7
    assert abs(extent(image[a]) - extent(target[a])) <= 0.15 * extent(image[a])     # one scale for both fonts
    # The same character in the same font is the same image whatever the rest of the set.
    alone = load_source("glyphs:DejaVuSans,DejaVuSerif?chars=latin&size=48")
    assert torch.equal(alone.x[alone.class_names.index("A")], ds.x[a])


def test_characters_a_font_lacks_are_dropped_from_every_font(tmp_path: Path):
    chars = tmp_path / "chars.txt"
    chars.write_text("A啊B\n∮ C C\n", encoding="utf-8")   # 啊: in neither; ∮: in DejaVuSans, not in DejaVuSerif
    ds = load_source(f"glyphs:DejaVuSans,DejaVuSerif?chars={chars}&size=32")
    assert ds.meta["chars"] == "ABC" and ds.meta["dropped"] == "啊∮"
    assert ds.class_names == ["A", "B", "C"] and len(ds) == 3
    only_sans = load_source(f"glyphs:DejaVuSans?chars={chars}&size=32")
    assert only_sans.meta["chars"] == "AB∮C" and only_sans.keys() == ("image", "label")
    expect_data_error(lambda: load_source("glyphs:DejaVuSans?chars=gb2312-1"), "no character", "gb2312-1")
    expect_data_error(lambda: load_source("glyphs:DejaVuSans?chars=klingon"), "klingon", "gb2312-1, digits")
    expect_data_error(lambda: load_source("glyphs:DejaVuSans?layout=grid"), "layout", "domains")
    expect_data_error(lambda: load_source("glyphs:DejaVuSans?colour=red"), "unknown option 'colour'", "chars")


def test_domains_layout_stacks_every_font_with_its_index():
    fonts = "DejaVuSans,DejaVuSerif,STIXGeneral"
    pairs = load_source(f"glyphs:{fonts}?chars=digits&size=32")
    ds = load_source(f"glyphs:{fonts}?chars=digits&size=32&layout=domains")
    assert ds.keys() == ("image", "label", "domain") and len(ds) == 30
    assert ds.fields["domain"].tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert ds.y.tolist() == list(range(10)) * 3 and ds.meta["layout"] == "domains"
    # With three fonts the pairs are zi2zi's: font 0 as the source, each other font a target with its domain.
    assert pairs.keys() == ("image", "label", "target", "domain") and len(pairs) == 20
    assert torch.equal(pairs.x[:10], ds.x[:10]) and torch.equal(pairs.x[10:], ds.x[:10])
    assert torch.equal(pairs.fields["target"], ds.x[10:]) and pairs.fields["domain"].tolist() == [1] * 10 + [2] * 10
    assert all(not torch.equal(ds.x[i], ds.x[10 + i]) for i in range(10))
    assert SOURCE_KEYS["glyphs"] == ("image", "label", "target", "domain")


@needs_cjk
def test_cjk_fonts_give_paired_hanzi(tmp_path: Path):
    hanzi = gb2312_level1()[::25]                 # 151 characters spread over all 40 rows
    chars = tmp_path / "hanzi.txt"
    chars.write_text(hanzi, encoding="utf-8")
    ds = load_source(f"glyphs:ukai,uming,wqy-zenhei,wqy-microhei?chars={chars}&size=48&layout=domains")
    n = len(hanzi)
    assert ds.meta["chars"] == hanzi and ds.meta["dropped"] == "" and len(ds) == 4 * n    # all four cover GB 2312
    assert [f["name"] for f in ds.meta["fonts"]] == ["AR PL UKai CN Book", "AR PL UMing CN Light",
                                                     "WenQuanYi Zen Hei Regular", "WenQuanYi Micro Hei Regular"]
    ukai, uming, zenhei, microhei = (ds.x[k * n:(k + 1) * n, 0] for k in range(4))
    for font in (ukai, uming, zenhei, microhei):
        assert all(ink_box(g) is not None for g in font)
    for a, b in ((ukai, uming), (uming, zenhei), (zenhei, microhei)):       # every character: another drawing
        assert ((a < 128) != (b < 128)).float().mean(dim=(1, 2)).min() > 0.02
    # The same characters: the Ming and the two Hei styles are close enough to find each glyph's partner (the
    # brush-written Kai is not, by pixels); and one scale, so that a Kai glyph is as large as its Hei partner.
    assert matched(uming, zenhei) > 0.85 and matched(zenhei, microhei) > 0.85
    size_ratio = torch.tensor([extent(a) / extent(b) for a, b in zip(ukai, zenhei)])
    assert 0.85 < size_ratio.median() < 1.15
    pairs = load_source(f"glyphs:ukai,wqy-zenhei?chars={chars}&size=48")
    assert torch.equal(pairs.x, ukai.unsqueeze(1)) and torch.equal(pairs.fields["target"], zenhei.unsqueeze(1))
    hk = load_source(f"glyphs:ukai?chars={chars}&size=48&index=1")
    assert hk.meta["fonts"][0]["name"] == "AR PL UKai HK Book" and hk.meta["fonts"][0]["index"] == 1
    expect_data_error(lambda: load_source(f"glyphs:ukai?chars={chars}&index=9"), "4 faces", "?index=0..3")


# ---------------------------------------------------------------------------------------------- emoji
@needs_emoji
def test_emoji_captions_are_their_unicode_names():
    ds = load_source("emoji?size=32")
    assert ds.keys() == ("image", "text") and ds.x.shape[1:] == (3, 32, 32) and len(ds) > 1000
    cps = ds.meta["code_points"]
    texts = decode(ds.fields["text"], ds.meta["vocab"])
    assert all(t == " ".join(words(unicodedata.name(chr(cp)))) for t, cp in zip(texts, cps))
    grin = cps.index(0x1F601)
    assert texts[grin] == "grinning face with smiling eyes" == ds.meta["captions"][grin]
    # On white, in colour: white corners, and a yellow face (red and green well above blue in its middle).
    assert (ds.x[:, :, 0, 0] == 255).all()
    face = ds.x[grin, :, 12:20, 12:20].float().mean(dim=(1, 2))
    assert face[0] > 150 and face[1] > 120 and face[2] < 0.6 * face[1]
    assert (ds.x.float().std(dim=1) > 20).float().mean() > 0.1                # colour, not grey
    assert len(torch.unique(ds.x.flatten(1), dim=0)) == len(ds)               # every emoji a different image


@needs_emoji
def test_emoji_split_is_a_fixed_ninety_ten_partition_with_one_vocabulary():
    every = load_source("emoji?size=32")                  # default: all, as the recipes before the split read it
    train, test = load_source("emoji?size=32&split=train", seed=5), load_source("emoji?size=32&split=test", seed=9)
    assert every.meta["split"] == "all" and len(test) == len(every) // 10 and len(train) + len(test) == len(every)
    cps, train_cps, test_cps = every.meta["code_points"], train.meta["code_points"], test.meta["code_points"]
    assert set(train_cps) | set(test_cps) == set(cps) and not set(train_cps) & set(test_cps)
    # train and test were loaded with different run seeds and still partition the set: the split ignores the seed
    assert train.meta["vocab"] == test.meta["vocab"] == every.meta["vocab"]
    # each held-out emoji keeps its image, caption and token ids of the whole set
    rows = [cps.index(cp) for cp in test_cps]
    assert torch.equal(test.x, every.x[rows]) and torch.equal(test.fields["text"], every.fields["text"][rows])
    assert test.meta["captions"] == [every.meta["captions"][i] for i in rows]
    assert test_cps != cps[:len(test_cps)]                # spread over the font, not its first code points
    expect_data_error(lambda: load_source("emoji?split=valid"), "?split=train or ?split=test or ?split=all")


def test_emoji_without_the_font_says_what_to_install(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(emoji_mod, "DEBIAN_EMOJI_FONT", tmp_path / "NotoColorEmoji.ttf")
    expect_data_error(lambda: load_source("emoji"), "apt-get install fonts-noto-color-emoji", "emoji:PATH")
    expect_data_error(lambda: load_source("emoji:/nowhere/Emoji.ttf"), "/nowhere/Emoji.ttf", "does not exist")
    expect_data_error(lambda: load_source("emoji?size=48"), "?size=32 or ?size=64")


# --------------------------------------------------------------------------------------------- photos
def photo_pixels(path: Path, mode: str = "RGB") -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert(mode)).reshape(im.height, im.width, -1)


def test_photos_are_bundled_and_load_with_the_network_off(monkeypatch):
    found = bundled("photos")
    assert {"astronaut", "chelsea", "coffee"} <= set(found)     # in every scikit-image wheel since long before 0.19
    assert all(p.is_file() for p in found.values())

    def no_network(*args, **kwargs):
        raise OSError("network is off in this test")
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ds = load_source("photos?patches=2&split=all")
    assert ds.class_names == list(found) and len(ds) == 2 * len(found)


def test_photo_patches_come_from_the_photos_and_hold_one_out():
    train = load_source("photos?size=64&patches=8&sr=4")
    test = load_source("photos?size=64&patches=8&split=test")
    names, holdout = train.class_names, train.meta["holdout"]
    assert holdout == "coffee" and set(test.y.tolist()) == {names.index("coffee")}
    assert names.index("coffee") not in train.y.tolist() and len(set(train.y.tolist())) == len(names) - 1
    assert train.x.shape == ((len(names) - 1) * 8, 3, 64, 64) and test.x.shape == (8, 3, 64, 64)
    assert train.fields["lowres"].shape == (len(train), 3, 16, 16) and "lowres" not in test.fields
    for ds in (train, test):                      # every patch is the photo's pixels at its recorded corner
        for i in range(0, len(ds), 5):
            name = names[ds.y[i]]
            row, col = ds.meta["corners"][name][i % 8]
            crop = photo_pixels(Path(ds.meta["photos"][name]))[row:row + 64, col:col + 64]
            assert np.array_equal(ds.x[i].permute(1, 2, 0).numpy(), crop)
    # lowres is the bicubic 4x reduction: close to each patch's 4x4 block means, far from another patch's.
    blocks = torch.nn.functional.avg_pool2d(train.x.float(), 4)
    lowres = train.fields["lowres"].float()
    assert torch.equal(train.fields["lowres"], downscale(train.x, 4))
    assert (lowres - blocks).abs().mean() < 6 < (lowres - blocks.roll(1, 0)).abs().mean()
    assert torch.equal(load_source("photos?size=64&patches=8&sr=4").x, train.x)     # deterministic


def test_textures_and_bad_photo_options():
    tex = load_source("textures?size=128&patches=3&split=all")
    assert tex.class_names == ["brick", "grass", "gravel"] and tex.x.shape == (9, 1, 128, 128)
    assert torch.equal(load_source("photos?set=textures&size=128&patches=3&split=all").x, tex.x)
    assert load_source("textures?patches=2&split=test").y.unique().tolist() == [2]            # gravel
    assert load_source("photos?patches=2&split=test&holdout=astronaut").y.unique().tolist() == [0]
    expect_data_error(lambda: load_source("photos?size=90&sr=4"), "multiple of ?sr=4")
    expect_data_error(lambda: load_source("photos?size=400&split=test&holdout=chelsea"), "larger than the photo chelsea")
    expect_data_error(lambda: load_source("photos?holdout=lena"), "lena", "astronaut")
    expect_data_error(lambda: load_source("photos?zoom=2"), "unknown option 'zoom'", "patches")
    expect_data_error(lambda: load_source("photos?split=val"), "?split=test")


# --------------------------------------------------------------------------------------- digit domains
def test_mnist5k_domains_have_their_relation_to_the_digits():
    x = load_mnist5k().x
    negative = load_source("mnist5k?domain=negative")
    assert torch.equal(negative.x, 255 - x) and torch.equal(negative.y, load_mnist5k().y)
    thick, thin = load_source("mnist5k?domain=thick").x, load_source("mnist5k?domain=thin").x
    assert (thick >= x).all() and (thin <= x).all()                   # dilation only adds ink, erosion only takes
    ink = lambda t: t.float().sum(dim=(1, 2, 3))
    assert (ink(thick) > ink(x)).all() and (ink(x) > ink(thin)).all()
    assert ink(thick).mean() > 1.3 * ink(x).mean() > 1.3 * 1.3 * ink(thin).mean()
    edges = load_source("mnist5k?domain=edges").x
    assert set(edges.unique().tolist()) == {0, 255}
    assert not (edges[x > 191] > 0).any()                             # the outline lies outside the strokes
    near = torch.nn.functional.max_pool2d(x.float(), 3, 1, 1) > 64    # ... but next to them
    assert (edges[~near] == 0).all() and (edges > 0).flatten(1).any(1).all()
    colour = load_source("mnist5k?domain=colour").x
    assert colour.shape == (5000, 3, 28, 28) and (colour.int() <= x.int()).all()
    assert (colour.max(dim=1, keepdim=True).values.int() - x.int()).abs().max() <= 1   # brightest channel = digit
    tint = colour.float().sum(dim=(2, 3)) / colour.float().sum(dim=(1, 2, 3)).unsqueeze(1)
    assert tint.std(dim=0).min() > 0.05                                # the tints differ from digit to digit


def test_mnist5k_paired_domains_keep_the_split():
    pairs = load_source("mnist5k?domain=edges&paired=1&split=test")
    plain = load_source("mnist5k?split=test")
    assert pairs.keys() == ("image", "label", "target") and len(pairs) == 1000
    assert torch.equal(pairs.x, plain.x) and torch.equal(pairs.y, plain.y)
    assert torch.equal(pairs.fields["target"], derive(plain.x, "edges"))
    unpaired = load_source("mnist5k?split=train&domain=edges")
    assert len(unpaired) == 4000 and unpaired.keys() == ("image", "label")
    assert torch.equal(unpaired.x, derive(load_source("mnist5k?split=train").x, "edges"))
    colour = load_source("mnist5k?domain=colour&paired=1&split=test")
    assert colour.x.shape == (1000, 3, 28, 28) and torch.equal(colour.x[:, 0], plain.x[:, 0])
    everywhere = load_source("mnist5k?domain=colour").x                 # a digit's tint is the same in every split
    assert any(torch.equal(colour.fields["target"][0], everywhere[i]) for i in range(5000))
    expect_data_error(lambda: load_source("mnist5k?domain=sepia"), "sepia", "edges, negative")
    expect_data_error(lambda: load_source("mnist5k?paired=1"), "?domain=NAME&paired=1")
    expect_data_error(lambda: load_source("mnist5k?domain=edges&shift=2"), "takes only ?split=", "?domain=")
