"""What every text-conditional algorithm shares (GAN-INT-CLS, StackGAN, StackGAN++): the frozen text encoder, its
embeddings, the mismatched ("wrong") text of a batch, the matching-aware discriminator loss and text interpolation.

Reed et al. 2016, "Generative Adversarial Text to Image Synthesis" (section 4): the text encoder phi is pretrained
(with an image encoder, ``models/text_encoder.py``) and frozen; G and D see phi(t).

- (1) the encoder is one of the algorithm's networks, key ``T`` (role ``text-encoder``, arch ``gru``: a recipe's
  ``networks.T``; or ``minilm``, the pretrained all-MiniLM-L6-v2 of the optional extra ganforge[text], which only
  takes the vocabulary, ``models/sentence_encoder.py``), in no optimizer group and frozen: ``setup`` (a fresh run) loads into it the encoder pretrained on
  the run's own data source (``pretrained_text_encoder``: cached, deterministic), vocabulary included, so it is
  saved with every checkpoint and ``ganforge sample RUN --text ...`` needs the run directory only. A bank of the
  data's captions (``CAPTION_BANK`` token rows, algorithm state ``captions.tokens``, checkpointed) gives grids and
  plain ``ganforge sample`` captions to draw.
- (2) ``embed(tokens)``: phi(t), without gradient.
- (3) ``wrong_text(tokens)``: each caption of a batch replaced by another caption of the same batch written
  differently (Reed's GAN-CLS "mismatched text"; a different row is drawn again, up to a few times, while its text is
  the same: digit captions repeat).
- (4) ``matching_aware_d_loss(objective, s_real_right, s_real_wrong, s_fake_right)``: GAN-CLS algorithm 1, line 9,
  ``L_D = log D(x, h) + (log(1 - D(x, h^)) + log(1 - D(x^, h))) / 2`` (maximised), written through the configured
  objective as ``d_real(s_rr) + (d_fake(s_rw) + d_fake(s_fr)) / 2`` (minimised), so least squares or hinge work too.
- (5) ``interpolate_embeddings(t1, t2, beta)``: GAN-INT's ``beta t1 + (1 - beta) t2`` (beta = 0.5 in the paper), and
  ``interpolated_embeddings(emb)``: a batch's embeddings mixed with those of a shuffled copy, for G's extra inputs.
"""
from __future__ import annotations

import sys
from typing import Any, ClassVar, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError, DataError
from ..objectives import Objective

TEXT_ENCODER_KEY = "T"
TEXT_ENCODER_ROLE = "text-encoder"
CAPTION_BANK = 100        # captions of the data kept with a run, for grids and plain `ganforge sample`
WRONG_TEXT_TRIES = 4


def matching_aware_d_loss(objective: Objective, s_real_right: torch.Tensor, s_real_wrong: torch.Tensor,
                          s_fake_right: torch.Tensor) -> torch.Tensor:
    """GAN-CLS's discriminator loss (module docstring (4)) from D's raw scores of (real image, right text),
    (real image, wrong text) and (fake image, right text)."""
    return objective.d_real_loss(s_real_right) + 0.5 * (objective.d_fake_loss(s_real_wrong)
                                                         + objective.d_fake_loss(s_fake_right))


def interpolate_embeddings(t1: torch.Tensor, t2: torch.Tensor, beta: float | torch.Tensor = 0.5) -> torch.Tensor:
    """GAN-INT: ``beta * t1 + (1 - beta) * t2`` (a float, or a tensor broadcasting against the embeddings)."""
    return beta * t1 + (1 - beta) * t2


def wrong_indices(tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each row i of a batch's captions, another row j != i whose caption is written differently where the batch
    has one (drawn again up to WRONG_TEXT_TRIES times); from the global RNG unless ``generator`` (checkpointed, so
    resumes repeat it)."""
    n = len(tokens)
    if n < 2:
        raise DataError("the matching-aware discriminator pairs each image with another image's caption; it needs "
                        "batches of at least 2 (set train.batch_size >= 2)")
    rows = torch.arange(n, device=tokens.device)
    j = (rows + torch.randint(1, n, (n,), generator=generator).to(tokens.device)) % n
    for _ in range(WRONG_TEXT_TRIES):
        same = (tokens[j] == tokens).all(1)
        if not bool(same.any()):
            break
        again = (rows + torch.randint(1, n, (n,), generator=generator).to(tokens.device)) % n
        j = torch.where(same, again, j)
    return j


class TextConditioning:
    """Mixin for an ``Algorithm`` conditioned on captions (module docstring). The algorithm lists
    ``"T": "text-encoder"`` in its ``roles`` (never in ``optimizer_groups``), calls ``init_text_conditioning`` in
    its ``__init__`` after ``Algorithm.__init__`` (with its ``text_dim`` parameter), passes its ``network_context``
    through ``text_network_context`` and returns ``setup_text_encoder(dataset)`` from ``setup``."""

    text_key: ClassVar[str] = TEXT_ENCODER_KEY
    needs_keys: ClassVar[tuple[str, ...]] = ("text",)
    nets: nn.ModuleDict
    state_modules: nn.ModuleDict
    data: Any
    value_range: Any

    def init_text_conditioning(self, text_dim: int, text_encoder_epochs: int = 8, text_encoder_seed: int = 0,
                               text_encoder_batch_size: int = 48) -> None:
        if self.text_key not in self.nets:
            raise ConfigError(f"networks.{self.text_key} is missing: a text-conditional algorithm holds its text "
                              f"encoder there (networks.{self.text_key}.arch=gru)")
        if getattr(self.nets[self.text_key], "embed_dim", text_dim) != text_dim:
            raise ConfigError(f"networks.{self.text_key}.embed_dim differs from algorithm.text_dim={text_dim}; set "
                              "algorithm.text_dim only")
        if text_encoder_epochs < 1 or text_encoder_batch_size < 2:
            raise ConfigError(f"algorithm.text_encoder_epochs must be >= 1 and text_encoder_batch_size >= 2 (the matching "
                              f"loss contrasts a batch's pairs), got {text_encoder_epochs} and {text_encoder_batch_size}")
        self.text_encoder_epochs, self.text_encoder_seed = text_encoder_epochs, text_encoder_seed
        self.text_encoder_batch_size = text_encoder_batch_size
        # Frozen here, not in setup, so that a resumed run (setup is not called) is frozen too.
        self.text_encoder.requires_grad_(False)
        length = int(self.data.field_shapes.get("text", (1,))[0])
        bank = nn.Module()
        bank.register_buffer("tokens", torch.zeros(CAPTION_BANK, length, dtype=torch.int64))
        self.state_modules["captions"] = bank
        self.text_encoder_facts: dict[str, Any] = {}

    @property
    def text_encoder(self) -> nn.Module:
        return self.nets[self.text_key]

    @property
    def embed_dim(self) -> int:
        return int(self.text_encoder.embed_dim)

    @classmethod
    def text_network_context(cls, ctx: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The embedding size is one setting, ``algorithm.text_dim``: the encoder's ``embed_dim`` and every other
        network's ``text_dim`` context fact (the size of the phi(t) it takes)."""
        dim = params.get("text_dim", cls.default_param("text_dim"))   # type: ignore[attr-defined]
        for key in ctx:
            ctx[key]["text_dim"] = dim
        ctx[cls.text_key]["embed_dim"] = dim
        return ctx

    def setup_text_encoder(self, dataset: Any) -> dict[str, Any]:
        """Load the encoder pretrained on ``dataset`` (the run's prepared data) into ``networks.T``, and keep a bank
        of its captions; returns facts to log (held-out retrieval of the encoder)."""
        from ..models.text_encoder import pretrained_text_encoder
        T = self.text_encoder
        if "text" not in getattr(dataset, "fields", {}):
            raise DataError(f"algorithm '{getattr(self, 'name', '?')}' needs captions; use a source that yields text "
                            "(digit-captions, emoji, captions:DIR)")
        facts: dict[str, Any] = {}
        if getattr(T, "needs_pretraining", True):
            pair = pretrained_text_encoder(dataset, vocab_size=T.vocab_size, embed_dim=T.embed_dim,
                                           word_dim=T.word_dim, value_range=tuple(self.value_range),
                                           seed=self.text_encoder_seed, epochs=self.text_encoder_epochs,
                                           batch_size=self.text_encoder_batch_size)
            T.load_state_dict(pair.text.state_dict())
            facts = pair.facts
        else:      # an encoder trained elsewhere (networks.T.arch=minilm): it only learns what the ids mean
            T.set_vocab(dataset.meta["vocab"])
        T.requires_grad_(False)
        with torch.random.fork_rng(devices=[]):   # the bank leaves the run's random streams untouched
            g = torch.Generator().manual_seed(self.text_encoder_seed)
            rows = torch.randperm(len(dataset), generator=g)[:CAPTION_BANK]
        bank = self.state_modules["captions"].tokens
        picked = dataset.fields["text"][rows]
        bank.zero_()
        bank[:len(picked), :picked.shape[1]] = picked[:, :bank.shape[1]].to(bank.device)
        if len(picked) < CAPTION_BANK:          # a tiny data set: repeat its captions to fill the bank
            bank[len(picked):] = bank[torch.arange(len(picked), CAPTION_BANK) % len(picked)]
        self.text_encoder_facts = {f"text_encoder_{k}": v for k, v in facts.items() if k not in ("source",)}
        return dict(self.text_encoder_facts)

    # ---------------------------------------------------------------------------------------- training inputs
    @torch.no_grad()
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """phi(t) for token ids N x L: float32 N x embed_dim, no gradient (the encoder is frozen)."""
        return self.text_encoder(tokens).float()

    def wrong_text(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The batch's mismatched captions (module docstring (3))."""
        return tokens[wrong_indices(tokens, generator)]

    def interpolated_embeddings(self, emb: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
        """GAN-INT's extra inputs: each embedding mixed with another caption's of the batch (a shuffle drawn from the
        global RNG), ``beta * t1 + (1 - beta) * t2``."""
        perm = torch.randperm(len(emb)).to(emb.device)
        return interpolate_embeddings(emb, emb[perm], beta)

    # ---------------------------------------------------------------------------------------- sampling inputs
    def caption_tokens(self, captions: Sequence[str]) -> torch.Tensor:
        """Token ids of captions given at sampling time: an empty caption is refused; words the encoder never saw
        become <unk>, said once on stderr."""
        from ..data.text import words
        empty = [i for i, c in enumerate(captions) if not words(str(c))]
        if empty or not captions:
            raise ConfigError(f"caption {empty[0] + 1 if empty else 1} is empty (no words); give text such as "
                              "--text \"a thin three\"")
        tokens, unknown = self.text_encoder.tokenize([str(c) for c in captions])
        if unknown:
            shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
            print(f"ganforge: the text encoder does not know {shown}; read as <unk>", file=sys.stderr, flush=True)
        return tokens

    def bank_tokens(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` captions drawn from the run's bank of training captions."""
        bank = self.state_modules["captions"].tokens
        return bank[torch.randint(len(bank), (n,), generator=generator).to(bank.device)]

    @torch.no_grad()
    def sample_embeddings(self, n: int, generator: torch.Generator, controls: dict[str, Any]) -> torch.Tensor:
        """Embeddings for ``n`` samples laid out as ``algorithms/controls.py`` grids: ``texts`` one caption per row
        (cycled); ``interpolate_text=(A, B)`` each row walks from A's embedding to B's across its columns; neither:
        captions drawn from the run's bank."""
        from .controls import per_row
        cols = per_row(n, controls)
        rows = torch.arange(n) // cols
        if controls.get("interpolate_text"):
            a, b = controls["interpolate_text"]
            ends = self.embed(self.caption_tokens([a, b]))
            alpha = (torch.linspace(0, 1, cols) if cols > 1 else torch.zeros(1))[torch.arange(n) % cols]
            alpha = alpha.to(ends.device).view(-1, 1)
            return interpolate_embeddings(ends[1:2], ends[0:1], alpha)   # alpha 0: A, alpha 1: B
        if controls.get("texts"):
            emb = self.embed(self.caption_tokens(list(controls["texts"])))
            return emb[(rows % len(emb)).to(emb.device)]
        return self.embed(self.bank_tokens(n, generator))
