"""The optional pretrained sentence encoder (``networks.T.arch=minilm``, extra ``ganforge[text]``): its embeddings
follow the captions' meaning, a GAN-INT-CLS run takes it in place of the word-GRU (only the vocabulary in the
checkpoint) and samples from ``--text`` from the run directory, and without the extra the refusal is one line."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.errors import ConfigError
from ganforge.models import sentence_encoder
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import learned, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")
needs_extra = pytest.mark.skipif(not sentence_encoder.available(),
                                 reason="needs the optional extra ganforge[text] (pip install '.[text]')")

TINY = {"data.source": "digit-captions?split=test&captions=1", "data.image_size": 16, "data.held_out": None,
        "networks.T.arch": "minilm", "algorithm.text_dim": 384, "networks.G.widths": [16, 8],
        "networks.D.widths": [8, 16], "algorithm.latent_dim": 8, "train.threads": 1, "train.batch_size": 16,
        "train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 1000, "train.grid_size": 4}


@needs_extra
def test_minilm_embeddings_follow_the_captions_meaning():
    T = sentence_encoder.MiniLMTextEncoder()
    captions = ["a thin three", "a thick three", "a small zero", "three", "a thin three"]
    T.set_vocab(["<pad>", "<unk>", "a", "thin", "thick", "small", "three", "zero"])
    tokens, unknown = T.tokenize(captions)
    assert unknown == []
    emb = F.normalize(T(tokens), dim=1)
    assert emb.shape == (5, 384) and torch.equal(emb[0], emb[4])        # the same caption, the same embedding
    sim = emb @ emb.t()
    # the same digit is near whatever the stroke (measured 0.92), another digit far (0.35); "three" alone between
    learned("similarity of 'a thin three' to 'a thick three' over 'a small zero'", float(sim[0, 1] - sim[0, 2]), 0.3)
    assert sim[3, 0] > sim[3, 2] + 0.1
    assert sum(p.numel() for p in T.parameters()) == 0 and list(T.state_dict()) == ["vocab_bytes"]


@needs_extra
def test_a_text_to_image_run_takes_the_pretrained_encoder(tmp_path, capsys):
    run = ganforge.train("text2image-digits", steps=3, out=tmp_path / "run", progress=False, overrides=TINY)
    weights = read_checkpoint(latest_checkpoint(run.run_dir))[0]
    assert [k for k in weights if k.startswith("nets.T.")] == ["nets.T.vocab_bytes"]    # no MiniLM weights saved
    model = ganforge.load(run.run_dir)
    emb = model.algorithm.embed(model.algorithm.caption_tokens(["a thin three", "a thick seven"]))
    assert emb.shape == (2, 384) and not torch.allclose(emb[0], emb[1])
    code, _, err = run_cli(["sample", run.run_dir, "--text", "a thin three", "--per-row", 2, "--out",
                            tmp_path / "s.png"], capsys)
    assert code == 0 and (tmp_path / "s.png").is_file(), err


def test_minilm_refusals_are_one_line(monkeypatch):
    monkeypatch.setattr(sentence_encoder, "available", lambda: True)
    with pytest.raises(ConfigError, match="set algorithm.text_dim=384"):
        sentence_encoder.MiniLMTextEncoder(embed_dim=128)
    monkeypatch.setattr(sentence_encoder, "available", lambda: False)
    with pytest.raises(ConfigError, match=r"needs the optional extra ganforge\[text\]") as err:
        sentence_encoder.MiniLMTextEncoder()
    assert "\n" not in str(err.value)
