"""``emoji[:FONT]``: the colour emoji of a bitmap emoji font, each captioned with its Unicode name (text-to-image).

The font is Debian's ``fonts-noto-color-emoji`` (``/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf``, installed by
``make fonts``) unless FONT names another file or font name (resolved as ``glyphs:`` does). Every single code point the
font maps (its ``cmap``) that is an emoji with a Unicode name is drawn: keycap digits, ``#`` / ``*``, the regional
indicator letters (halves of flags), skin-tone swatches and joiners, which are parts of sequences rather than emoji of
their own, are left out, as is anything drawn without ink.

Noto Color Emoji is a CBDT font: its glyphs are 136 x 128 colour bitmaps that FreeType gives only at the strike size,
109 px, and only with ``embedded_color=True``. Each is drawn there on a transparent canvas, composited over white
(RGB 255, 255, 255: the font's own page background), padded to a white square and resized (antialiased) to ``?size=``
(32 or 64, default 64). The caption is ``unicodedata.name`` lower-cased ("grinning face with smiling eyes"), as tokens
in the ``text`` field (vocabulary in ``meta["vocab"]``, the captions in ``meta["captions"]``).

``?split=train|test|all`` (default all, the whole font): a fixed 90 / 10 split of the drawn emoji for held-out
captions, one in ten held out by a permutation with seed 0 (``captions:DIR``'s rule and seed: a property of the data,
not of a run's seed, so no run trains on the held-out emoji). The vocabulary is built from ALL the names whatever the
split, so a word means the same token id in train and test (a held-out word no train caption has keeps an id that a
text encoder pretrained on the train split never trained).
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import DataError
from .base import Dataset, register_source
from .glyphs import open_face, positive_int, resolve_font, split_options
from .idx import error_reason
from .text import build_vocab, encode
from .translation import choice

DEBIAN_EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
STRIKE_PX = 109            # the one size at which FreeType draws Noto Color Emoji's bitmaps
SIZES = (32, 64)
SPLITS = ("train", "test", "all")
TEST_SHARE = 10   # one emoji in ten held out (as captions:DIR without class lists)
SPLIT_SEED = 0    # fixed: the split is a property of the data, not of a run
BACKGROUND = (255, 255, 255)
# Code points that name a part of an emoji sequence, not an emoji: regional indicators (flags are pairs of them),
# skin-tone modifiers, keycap / joiner / variation / tag characters, and ASCII (digits, '#', '*' become keycaps).
_PARTS = (range(0x1F1E6, 0x1F200), range(0x1F3FB, 0x1F400), range(0xE0000, 0xE0080), range(0xFE00, 0xFE10),
          range(0x0000, 0x0080))
_NOT_EMOJI_CATEGORIES = {"Cc", "Cf", "Cn", "Co", "Me", "Mn", "Sk", "Zs"}


def emoji_code_points(covered: frozenset[int]) -> list[int]:
    """The font's single-code-point emoji that have a Unicode name (in this Python's Unicode database), in order."""
    keep = []
    for cp in sorted(covered):
        if any(cp in part for part in _PARTS) or unicodedata.category(chr(cp)) in _NOT_EMOJI_CATEGORIES:
            continue
        if unicodedata.name(chr(cp), ""):
            keep.append(cp)
    return keep


def caption(cp: int) -> str:
    """An emoji's caption: its Unicode name, lower-cased ("grinning face with smiling eyes")."""
    return unicodedata.name(chr(cp)).lower()


@lru_cache(maxsize=4)
def _render(path: str, code_points: tuple[int, ...], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N x size x size x 3 RGB on white, bool N: drawn with ink) of each code point; cached for the process."""
    font = ImageFont.truetype(path, size=STRIKE_PX)
    side = 2 * STRIKE_PX
    images = np.empty((len(code_points), size, size, 3), np.uint8)
    inked = np.zeros(len(code_points), bool)
    for i, cp in enumerate(code_points):
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((side // 2, side // 2), chr(cp), font=font, embedded_color=True, anchor="mm")
        box = canvas.getbbox()
        square = Image.new("RGB", (STRIKE_PX + 27, STRIKE_PX + 27), BACKGROUND)   # 136 px: the bitmaps' width
        if box is not None:
            inked[i] = True
            glyph = canvas.crop(box)
            if max(glyph.size) > square.width:      # an emoji wider than the strike: fit it, keeping its aspect
                glyph.thumbnail((square.width, square.width), Image.LANCZOS)
            square.paste(glyph, ((square.width - glyph.width) // 2, (square.height - glyph.height) // 2), glyph)
        images[i] = np.asarray(square.resize((size, size), Image.LANCZOS))
    return images, inked


def held_out_mask(n: int) -> np.ndarray:
    """Which of ``n`` emoji (in code point order) the test split holds: ``n // 10`` of them, by a seed-0 permutation."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED)).numpy()
    test = np.zeros(n, dtype=bool)
    test[order[:n // TEST_SHARE]] = True
    return test


def load_emoji(font: Path, size: int, spec: str, split: str = "all") -> Dataset:
    face, covered = open_face(font, 0, spec)
    cps = emoji_code_points(covered)
    if not cps:
        raise DataError(f"font {font} (from '{spec}') maps no emoji code points; give a colour emoji font such as "
                        "Noto Color Emoji (apt-get install fonts-noto-color-emoji)")
    try:
        images, inked = _render(str(font), tuple(cps), size)
    except OSError as err:
        # FreeType refuses a bitmap font at any size but its strikes: a font other than Noto's may need another.
        raise DataError(f"PIL cannot draw {font} at {STRIKE_PX} px (from '{spec}'): {error_reason(err)}; give a "
                        f"CBDT colour emoji font with a {STRIKE_PX} px strike, such as Noto Color Emoji") from None
    kept = [cp for cp, ok in zip(cps, inked) if ok]
    if not kept:
        raise DataError(f"font {font} (from '{spec}') drew none of its {len(cps)} emoji; give a colour emoji font "
                        "such as Noto Color Emoji")
    all_captions = [caption(cp) for cp in kept]
    vocab = build_vocab(all_captions)                     # from every name: train and test token ids agree
    max_len = max(len(c.split()) for c in all_captions)
    chosen = np.ones(len(kept), dtype=bool) if split == "all" else held_out_mask(len(kept)) ^ (split == "train")
    captions = [c for c, keep in zip(all_captions, chosen) if keep]
    x = torch.from_numpy(images[inked][chosen]).permute(0, 3, 1, 2).contiguous()
    meta = {"font": {"name": face.name, "path": str(font)}, "vocab": vocab, "captions": captions, "split": split,
            "code_points": [cp for cp, keep in zip(kept, chosen) if keep], "background": "white (255, 255, 255)"}
    return Dataset(x=x, y=None, name=spec, meta=meta, fields={"text": encode(captions, vocab, max_len)})


@register_source("emoji", "the colour emoji of Noto Color Emoji (apt-get install fonts-noto-color-emoji) on white, "
                 "captioned with their Unicode names as text tokens: emoji[:FONT][?size=32|64&split=train|test|all] "
                 "(a fixed 90/10 split, default all)",
                 keys=("image", "text"))
def _emoji(arg: str, seed: int) -> Dataset:
    spec = f"emoji:{arg}" if arg and not arg.startswith("?") else f"emoji{arg}"
    head, options = split_options(arg, "emoji", {"size": "32 or 64 px (default 64)",
                                                 "split": "train, test or all (default all)"})
    split = choice(options, "split", SPLITS, "all", spec)
    size = positive_int(options, "size", spec, 64)
    if size not in SIZES:
        raise DataError(f"?size={size} in '{spec}' is not offered; use ?size=32 or ?size=64 (or data.image_size "
                        "to resize further)")
    if head:
        font = resolve_font(head, spec, what="emoji font")
    elif DEBIAN_EMOJI_FONT.is_file():
        font = DEBIAN_EMOJI_FONT
    else:
        raise DataError(f"data source '{spec}' needs the Noto Color Emoji font, which is not at {DEBIAN_EMOJI_FONT}; "
                        "install it (apt-get install fonts-noto-color-emoji, or make fonts) or give its path: "
                        "emoji:PATH/NotoColorEmoji.ttf")
    return load_emoji(font, size, spec, split)
