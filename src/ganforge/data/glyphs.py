"""``glyphs:FONT[,FONT...]``: real glyph renderings from font files, one domain per font, paired by character.

This is the data of zi2zi-style font-to-font translation (and of StarGAN / ComboGAN over font styles) with nothing to
download: the fonts are files already on the machine. A FONT is a path to a ``.ttf`` / ``.otf`` / ``.ttc`` file or a
name looked up, by file stem and case-insensitively, first among matplotlib's bundled fonts (``DejaVuSans``,
``DejaVuSerif``, ``DejaVuSansMono``, ``STIXGeneral``, ``cmr10`` ...: present wherever ganforge is installed) and then
under ``/usr/share/fonts`` and ``/usr/local/share/fonts`` (Debian's ``ukai``, ``uming``, ``wqy-zenhei``,
``wqy-microhei``: four CJK styles, from ``make fonts``).

Each glyph is drawn with PIL and its ink bounding box centred in a ``size`` x ``size`` square. One scale per font:
fonts draw their glyphs at different sizes within the em (AR PL UKai's hanzi are about a tenth smaller than WenQuanYi
Zen Hei's), which would leave a pix2pix-style pair misaligned, so each font is drawn at the pixel size that makes the
median of its glyphs' ink extents (measured once over a fixed reference set: the digits, the Latin letters and every
fifth GB 2312 level-1 hanzi that the font has) 0.7 of the square. Within a font, glyphs keep their relative
scale (a comma stays small), and a glyph's image does not depend on which other characters were asked for; the rare
glyph that would still not fit is shrunk, keeping its aspect. The convention is zi2zi's (``font2img.py``): a black
glyph (0) on white (255), one channel.

Which characters a font really has comes from its ``cmap`` table (fontTools, which matplotlib depends on): a character
missing from any font, mapped to ``.notdef``, or drawn without ink (a space) is dropped from every font, so the i-th
glyph of each font is always the same character and pairs stay pairs.

Held-out characters, ``?split=train|test|all`` (default ``all``: every character, as before splits existed): one
character in eight is held out, chosen by a hash of the character alone (BLAKE2b of its UTF-8 bytes, 8-byte digest,
mod 8 == 0), so the same characters are held out for every font, every character set and every ordering or file that
contains them, on every machine, and a run trained on ``split=train`` never sees a ``split=test`` glyph in any font.
For ``alnum`` that is 11 of the 62 characters (5 D F L Q h j o u w z), for ``gb2312-1`` 490 of 3,755, for ``digits``
only ``5``. The split is taken of the characters every font draws; a split left empty (a handful of characters may
all fall on one side) is one line naming the fix.
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import DataError
from .base import Dataset, check_fits_in_memory, register_source
from .idx import error_reason

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
COLLECTION_SUFFIXES = (".ttc", ".otc")
SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# The Debian package that ships a font known by name, for the one line that says how to get it.
DEBIAN_PACKAGES = {"ukai": "fonts-arphic-ukai", "uming": "fonts-arphic-uming", "wqy-zenhei": "fonts-wqy-zenhei",
                   "wqy-microhei": "fonts-wqy-microhei", "notocoloremoji": "fonts-noto-color-emoji"}
# Shorter spellings people use for the CJK fonts (their package or family names).
ALIASES = {"arphic-ukai": "ukai", "arphic-uming": "uming", "zenhei": "wqy-zenhei", "microhei": "wqy-microhei",
           "noto-color-emoji": "notocoloremoji"}
# The share of the square that a font's median glyph extent fills: a hanzi (whose extents vary little) or a capital
# fills about 0.7 of it, and the letters with ascenders and descenders (up to ~1.3 times a capital) still fit.
FILL, FILL_PERCENTILE = 0.7, 50
MARGIN = 0.04          # the share of the side kept free around a glyph that had to be shrunk to fit
MEASURE_PX = 48        # the pixel size at which a font's glyph extents are measured
DEFAULT_SIZE = 64
LAYOUTS = ("pairs", "domains")
SPLITS = ("train", "test", "all")
HOLDOUT_EVERY = 8      # one character in eight (by hash) is held out: ?split=test


# ------------------------------------------------------------------------------------------------ options
def split_options(arg: str, source: str, allowed: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``HEAD?key=value&key=value`` -> (HEAD, options), checking every key against ``allowed`` (name ->
    description, quoted in the error). A HEAD that exists as a path is never split, so a ``?`` in a file name works."""
    head, options = arg, {}
    if "?" in arg and not Path(arg).expanduser().exists():
        head, _, query = arg.partition("?")
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            if not eq or not value:
                raise DataError(f"bad option {item!r} in '{source}{':' if head else ''}{arg}'; write options as "
                                "?key=value&key=value")
            if key not in allowed:
                accepted = ", ".join(f"{k} ({d})" for k, d in allowed.items()) or "no options"
                raise DataError(f"unknown option {key!r} in '{source}{':' if head else ''}{arg}'; {source} accepts: "
                                f"{accepted}")
            options[key] = value
    return head, options


def positive_int(options: dict[str, str], key: str, spec: str, default: int) -> int:
    text = options.get(key)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"option {key}={text!r} in '{spec}' must be a positive whole number")
    return int(text)


# --------------------------------------------------------------------------------------------- characters
def gb2312_level1() -> str:
    """The 3,755 level-1 hanzi of GB 2312 (the set zi2zi trains on), by decoding its rows 16-55.

    Row r's cells are the bytes (0xA0 + r, 0xA0 + c) for c = 1..94; level 1 is rows 16-55 (lead bytes 0xB0-0xD7),
    whose last row holds 89 characters: its 5 last cells (0xD7FA-0xD7FE) are unassigned, the codec refuses them."""
    chars = []
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.append(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(chars)


DIGITS = "0123456789"
LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CHARSETS = {"gb2312-1": gb2312_level1, "digits": lambda: DIGITS, "latin": lambda: LATIN,
            "alnum": lambda: DIGITS + LATIN}


def resolve_chars(text: str, spec: str) -> tuple[str, str]:
    """(characters, what they are) for ``?chars=``: a named set or a UTF-8 text file of characters (whitespace
    ignored, repeats kept once, in file order)."""
    if text in CHARSETS:
        return CHARSETS[text](), text
    path = Path(text).expanduser()
    if not path.is_file():
        raise DataError(f"?chars={text} in '{spec}' is neither a character set ({', '.join(CHARSETS)}) nor a file; "
                        "give one of those or the path of a UTF-8 text file of characters")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the characters file {path} (from '{spec}'): {error_reason(err)}; "
                        "give a readable UTF-8 text file") from None
    chars = "".join(dict.fromkeys(ch for ch in content if not ch.isspace()))
    if not chars:
        raise DataError(f"the characters file {path} (from '{spec}') holds no characters; write the characters "
                        "to render into it")
    return chars, str(path)


def held_out(ch: str) -> bool:
    """Whether ``ch`` is a held-out character (``?split=test``): a fixed hash of the character alone, the same in
    every font, character set and Python process (unlike ``hash()``, which is salted per process)."""
    digest = hashlib.blake2b(ch.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % HOLDOUT_EVERY == 0


def split_chars(chars: str, split: str) -> str:
    """The characters of ``chars`` in ``split`` (train: not held out, test: held out, all: every one), in order."""
    if split == "all":
        return chars
    return "".join(ch for ch in chars if held_out(ch) == (split == "test"))


# ------------------------------------------------------------------------------------------------- fonts
def matplotlib_font_dir() -> Path | None:
    """matplotlib's bundled TTF folder, found without importing matplotlib (which is slow to import)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"
    return path if path.is_dir() else None


def font_dirs() -> list[Path]:
    """Where font names are looked up, in order: matplotlib's fonts first, so that ``DejaVuSans`` is the same file on
    every machine whatever the system ships, then the system's."""
    mpl = matplotlib_font_dir()
    return ([mpl] if mpl else []) + [d for d in SYSTEM_FONT_DIRS if d.is_dir()]


def _font_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())


def resolve_font(name: str, spec: str, what: str = "font") -> Path:
    """The font file for a FONT of a spec: an existing path, or a known font name (see the module's docstring)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if "/" in name or "\\" in name or name.lower().endswith(FONT_SUFFIXES):
        raise DataError(f"{what} file {path} (from '{spec}') does not exist; give the path of a .ttf/.otf/.ttc file "
                        "or a font name such as DejaVuSans")
    key = ALIASES.get(name.lower(), name.lower())
    for folder in font_dirs():
        for candidate in _font_files(folder):
            if candidate.stem.lower() == key:
                return candidate
    package = DEBIAN_PACKAGES.get(key)
    how = (f"install it (apt-get install {package}, or make fonts) or give its path" if package
           else "give the path of a .ttf/.otf/.ttc file")
    mpl = matplotlib_font_dir()
    where = "matplotlib's fonts (DejaVuSans, DejaVuSerif, DejaVuSansMono, STIXGeneral, ...)" if mpl else \
        "matplotlib's fonts (not installed: pip install matplotlib)"
    raise DataError(f"{what} {name!r} in '{spec}' is not among {where} nor under "
                    f"{' or '.join(map(str, SYSTEM_FONT_DIRS))}; {how}")


@dataclass(frozen=True)
class Face:
    """One face of a font file: ``index`` is the face number inside a collection (0 for a plain font)."""

    path: Path
    index: int
    family: str
    style: str

    @property
    def name(self) -> str:
        return f"{self.family} {self.style}".strip()


@lru_cache(maxsize=32)
def _read_face(path: str, index: int) -> tuple[str, str, frozenset[int]]:
    """(family, style, the code points the face really draws) from its name and cmap tables."""
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.ttCollection import TTCollection

    suffix = Path(path).suffix.lower()
    if suffix in COLLECTION_SUFFIXES:
        count = len(TTCollection(path, lazy=True).fonts)
        if index >= count:
            raise DataError(f"font collection {path} has {count} faces (?index=0..{count - 1}); got ?index={index}")
    font = TTFont(path, fontNumber=index if suffix in COLLECTION_SUFFIXES else -1, lazy=True)
    cmap = font.getBestCmap()
    if not cmap:
        raise DataError(f"font {path} has no Unicode character map; give a font with a Unicode cmap")
    notdef = font.getGlyphOrder()[0]
    names = font["name"]
    family = names.getDebugName(16) or names.getDebugName(1) or Path(path).stem
    style = names.getDebugName(17) or names.getDebugName(2) or ""
    return family, style, frozenset(cp for cp, glyph in cmap.items() if glyph != notdef)


def open_face(path: Path, index: int, spec: str) -> tuple[Face, frozenset[int]]:
    """The face and the code points it covers; unreadable fonts are one DataError line."""
    try:
        family, style, covered = _read_face(str(path), index)
    except DataError as err:
        raise DataError(f"{err} (from '{spec}')") from None
    except Exception as err:   # fontTools raises TTLibError, struct.error, AssertionError ... on a damaged file
        raise DataError(f"cannot read font {path} (from '{spec}'): {error_reason(err)}; give an intact "
                        ".ttf/.otf/.ttc file") from None
    return Face(path, index, family, style), covered


# ------------------------------------------------------------------------------------------------ render
def _centre(ink: Image.Image, size: int) -> np.ndarray:
    """``ink`` (L, ink = 255) cropped to its ink, shrunk if it does not fit, centred in a size x size square."""
    box = ink.getbbox()
    out = Image.new("L", (size, size), 0)
    if box is None:
        return np.asarray(out)
    glyph = ink.crop(box)
    room = max(1, size - 2 * round(MARGIN * size))
    w, h = glyph.size
    if max(w, h) > room:
        scale = room / max(w, h)
        glyph = glyph.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        w, h = glyph.size
    out.paste(glyph, ((size - w) // 2, (size - h) // 2))
    return np.asarray(out)


def _draw(font: ImageFont.FreeTypeFont, ch: str, side: int) -> Image.Image:
    """``ch`` as ink (255) on 0, anchored at the middle of a side x side canvas (three times the font's pixel size
    or more: room for any glyph drawn far outside its em)."""
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text((side // 2, side // 2), ch, fill=255, font=font, anchor="mm")
    return canvas


def reference_chars(covered: frozenset[int]) -> str:
    """The characters a face's scale is measured on: the digits, Latin letters and every fifth level-1 hanzi it
    has, or else (a Greek, symbol or other font) the first 256 printable characters it maps."""
    chars = "".join(ch for ch in DIGITS + LATIN + gb2312_level1()[::5] if ord(ch) in covered)
    return chars or "".join(chr(cp) for cp in sorted(covered) if chr(cp).isprintable() and not chr(cp).isspace())[:256]


@lru_cache(maxsize=32)
def _extent_per_px(path: str, index: int) -> float:
    """The FILL_PERCENTILE-th percentile of a face's ink extents (the larger of width and height) per pixel of font
    size, over its reference characters."""
    font = ImageFont.truetype(path, size=MEASURE_PX, index=index)
    extents = []
    for ch in reference_chars(_read_face(path, index)[2]):
        box = _draw(font, ch, 3 * MEASURE_PX).getbbox()
        if box is not None:
            extents.append(max(box[2] - box[0], box[3] - box[1]))
    return float(np.percentile(extents, FILL_PERCENTILE)) / MEASURE_PX if extents else 1.0


@lru_cache(maxsize=16)
def _render(path: str, index: int, chars: str, size: int) -> np.ndarray:
    """uint8 len(chars) x size x size ink maps (255 = ink) of ``chars`` in one face; cached, since a run loads its
    data more than once (training stream, sample grid inputs, evaluator reference)."""
    px = max(1, round(FILL * size / _extent_per_px(path, index)))
    font = ImageFont.truetype(path, size=px, index=index)
    side = 3 * max(px, size)
    out = np.zeros((len(chars), size, size), np.uint8)
    for i, ch in enumerate(chars):
        out[i] = _centre(_draw(font, ch, side), size)
    return out


def render_glyphs(face: Face, chars: str, size: int) -> np.ndarray:
    """uint8 N x size x size glyphs of ``chars`` in ``face``, black (0) on white (255) as zi2zi draws them."""
    try:
        ink = _render(str(face.path), face.index, chars, size)
    except OSError as err:
        raise DataError(f"PIL cannot render font {face.path}: {error_reason(err)}; give a TrueType/OpenType font "
                        "that FreeType reads") from None
    return 255 - ink


# ------------------------------------------------------------------------------------------------ source
@dataclass
class GlyphSet:
    """Every face's glyphs of the characters all of them draw: ``images[f][i]`` is ``chars[i]`` in ``faces[f]``."""

    faces: list[Face]
    chars: str
    dropped: str
    images: np.ndarray        # uint8 F x N x size x size, black on white


def _indices(text: str | None, n_fonts: int, spec: str) -> list[int]:
    if text is None:
        return [0] * n_fonts
    parts = text.split(",")
    if not all(p.isdigit() for p in parts) or len(parts) not in (1, n_fonts):
        raise DataError(f"?index={text} in '{spec}' must be one face number for every collection, or one per font "
                        f"({n_fonts} comma-separated whole numbers)")
    return [int(p) for p in parts] * (n_fonts if len(parts) == 1 else 1)


def load_glyph_set(fonts: list[str], chars: str, size: int, spec: str, indices: list[int] | None = None) -> GlyphSet:
    """Render ``chars`` in every font (names or paths), keeping only characters every font has, with ink."""
    indices = indices or [0] * len(fonts)
    faces, coverage = [], []
    for name, index in zip(fonts, indices):
        path = resolve_font(name, spec)
        face, covered = open_face(path, index if path.suffix.lower() in COLLECTION_SUFFIXES else 0, spec)
        faces.append(face)
        coverage.append(covered)
    have = "".join(ch for ch in chars if all(ord(ch) in c for c in coverage))
    if have:
        check_fits_in_memory(len(have) * len(faces), size * size, spec, f"{len(have)} glyphs x {len(faces)} fonts",
                             "use a smaller ?size= or fewer ?chars=")
    images = np.stack([render_glyphs(face, have, size) for face in faces]) if have else \
        np.zeros((len(faces), 0, size, size), np.uint8)
    # A glyph drawn without ink (a space, an empty outline) in any font is no pair: drop it everywhere.
    inked = (images < 255).any(axis=(2, 3)).all(axis=0) if have else np.zeros(0, bool)
    kept = "".join(ch for ch, ok in zip(have, inked) if ok)
    if not kept:
        raise DataError(f"no character of ?chars= is drawn by every font in '{spec}' "
                        f"({', '.join(f.name for f in faces)}); pick characters these fonts share (e.g. ?chars=latin, "
                        "or ?chars=gb2312-1 with CJK fonts such as ukai, uming, wqy-zenhei)")
    dropped = "".join(ch for ch in chars if ch not in set(kept))
    return GlyphSet(faces, kept, dropped, np.ascontiguousarray(images[:, inked]))


@register_source("glyphs", "real glyphs rendered from font files, a domain per font, paired by character (zi2zi): "
                 "glyphs:FONT[,FONT...][?chars=gb2312-1|digits|latin|alnum|FILE&size=64&layout=pairs|domains&index=N"
                 "&split=train|test|all]; FONT a .ttf/.otf/.ttc path or a name (DejaVuSans, DejaVuSerif, STIXGeneral, "
                 "ukai, uming, wqy-zenhei, wqy-microhei); black glyph on white; ?split=test: the characters held out "
                 "(one in eight, by a hash of the character, the same for every font)",
                 keys=("image", "label", "target", "domain"))
def _glyphs(arg: str, seed: int) -> Dataset:
    spec = f"glyphs:{arg}"
    head, options = split_options(arg, "glyphs", {
        "chars": "gb2312-1, digits, latin, alnum or a text file (default alnum)",
        "size": "square side in px (default 64)",
        "layout": "pairs (image in font 1, target in each other font) or domains (every font, a domain field)",
        "index": "face number in .ttc collections, one or one per font (default 0)",
        "split": "train (all but the held-out characters), test (one in eight, by hash) or all (default)"})
    fonts = [f.strip() for f in head.split(",") if f.strip()]
    if not fonts:
        raise DataError("data source 'glyphs' needs fonts: write glyphs:FONT[,FONT...], e.g. "
                        "glyphs:DejaVuSans,DejaVuSerif or glyphs:ukai,wqy-zenhei?chars=gb2312-1")
    size = positive_int(options, "size", spec, DEFAULT_SIZE)
    layout = options.get("layout", "pairs")
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r} in '{spec}'; use ?layout=pairs or ?layout=domains")
    split = options.get("split", "all")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} in '{spec}'; use ?split=train (all but the held-out characters), "
                        "?split=test (the characters held out: one in eight, by hash) or ?split=all")
    chars, charset = resolve_chars(options.get("chars", "alnum"), spec)
    glyphs = load_glyph_set(fonts, chars, size, spec, _indices(options.get("index"), len(fonts), spec))
    if split != "all":
        glyphs = split_glyph_set(glyphs, split, spec)
    return glyph_dataset(glyphs, layout, spec, charset, split)


def split_glyph_set(glyphs: GlyphSet, split: str, spec: str) -> GlyphSet:
    """The characters of ``glyphs`` in ``split`` (``held_out``), with their images; an empty split is one line."""
    keep = [i for i, ch in enumerate(glyphs.chars) if held_out(ch) == (split == "test")]
    if not keep:
        other = "train" if split == "test" else "test"
        raise DataError(f"?split={split} of '{spec}' holds no character: all {len(glyphs.chars)} characters these "
                        f"fonts share are in the {other} split (one in eight is held out, by hash); give more "
                        "characters (?chars=alnum, gb2312-1 or a file) or use ?split=all")
    return GlyphSet(glyphs.faces, "".join(glyphs.chars[i] for i in keep), glyphs.dropped,
                    np.ascontiguousarray(glyphs.images[:, keep]))


def glyph_dataset(glyphs: GlyphSet, layout: str, name: str, charset: str, split: str = "all") -> Dataset:
    """The Dataset of a GlyphSet: label = character index, one channel, black glyph on white.

    ``pairs``: one font yields image, label; two or more: image = the glyph in font 0 (zi2zi's source font),
    target = the same character in font k, for k = 1.. (with three or more fonts, ``domain`` = k: zi2zi's category).
    ``domains``: every font's glyphs one after another, ``domain`` = the font's index (StarGAN / ComboGAN)."""
    images = torch.from_numpy(glyphs.images).unsqueeze(2)          # F x N x 1 x S x S
    n_fonts, n = images.shape[:2]
    labels = torch.arange(n, dtype=torch.int64)
    fields: dict[str, torch.Tensor] = {}
    if layout == "domains" or n_fonts == 1:
        x = images.reshape(n_fonts * n, *images.shape[2:])
        y = labels.repeat(n_fonts)
        if layout == "domains":
            fields["domain"] = torch.arange(n_fonts, dtype=torch.int64).repeat_interleave(n)
    else:
        x = images[0].repeat(n_fonts - 1, 1, 1, 1)
        y = labels.repeat(n_fonts - 1)
        fields["target"] = images[1:].reshape((n_fonts - 1) * n, *images.shape[2:])
        if n_fonts > 2:
            fields["domain"] = torch.arange(1, n_fonts, dtype=torch.int64).repeat_interleave(n)
    meta = {"fonts": [{"name": f.name, "path": str(f.path), "index": f.index} for f in glyphs.faces],
            "chars": glyphs.chars, "dropped": glyphs.dropped, "charset": charset, "layout": layout, "split": split,
            "convention": "black glyph (0) on white (255), as zi2zi"}
    return Dataset(x=x.contiguous(), y=y, name=name, class_names=list(glyphs.chars), meta=meta, fields=fields)
