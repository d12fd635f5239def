"""BigGAN's networks and S2GAN-CO / S3GAN's losses against direct computation: the hierarchical z split, the shared
embedding into each block's conditional BN, orthogonal init, sigma_0 monitoring, the rotation loss, the classifier
loss on the labelled rows only, and the labelled subset as checkpointable state."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.biggan import BigGAN, S3GAN, raw_weight, rotation_loss, rotations, top_singular_values
from ganforge.errors import ConfigError
from ganforge.models.biggan import BigGANDiscriminator, BigGANGenerator, split_latent
from ganforge.nn.spectral import weight_as_matrix
from ganforge.objectives import objective_class

from conftest import RecordingContext

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = DataInfo("image", (1, 16, 16), 10)


def generator(**kw) -> BigGANGenerator:
    return BigGANGenerator(latent_dim=12, image_size=16, channels=1, cond_dim=10, widths=(16, 8, 8), shared_dim=6, **kw)


def discriminator(**kw) -> BigGANDiscriminator:
    return BigGANDiscriminator(image_size=16, channels=1, num_classes=10, widths=(8, 8, 8),
                               downsample=(True, True, False), **kw)


def test_hierarchical_z_splits_into_one_chunk_per_block_and_the_first_layer():
    torch.manual_seed(0)
    G = generator().eval()
    z, y = torch.randn(5, 12), F.one_hot(torch.arange(5), 10).float()
    first, conds = G.block_conditions(z, y)
    assert G.chunks == 3 and torch.equal(first, z[:, :4])
    shared = y @ G.shared.weight.T                       # the one shared class embedding, a table lookup
    for i, c in enumerate(conds):
        assert torch.equal(c[:, :6], shared) and torch.equal(c[:, 6:], z[:, 4 * (i + 1):4 * (i + 2)])
    assert [t.tolist() for t in split_latent(z, 3)] == [z[:, :4].tolist(), z[:, 4:8].tolist(), z[:, 8:].tolist()]
    # the last chunk reaches the output through the last block only: changing it leaves the first block's input be
    z2 = z.clone()
    z2[:, 8:] += 1.0
    assert torch.equal(G.block_conditions(z2, y)[1][0], conds[0])
    assert not torch.allclose(G(z2, y), G(z, y))
    flat = generator(hierarchical=False).eval()
    f_first, f_conds = flat.block_conditions(z, y)
    assert torch.equal(f_first, z) and all(c.shape == (5, 6) for c in f_conds)
    with pytest.raises(ConfigError, match="split into 3 equal chunks"):
        BigGANGenerator(latent_dim=13, image_size=16, channels=1, cond_dim=10, widths=(16, 8, 8))


def test_conditional_bn_gains_come_from_the_shared_embedding_and_the_chunk_linearly():
    torch.manual_seed(1)
    G = generator().eval()               # eval: BN uses its running statistics (0, 1) and SN's u stays put
    z, y = torch.randn(4, 12), F.one_hot(torch.tensor([0, 3, 3, 9]), 10).float()
    _, conds = G.block_conditions(z, y)
    norm = G.blocks[1].b2.norm                             # block 1's second conditional BN (8 channels)
    x = torch.randn(4, 8, 5, 5)
    W_g, W_b = norm.map.gain.weight, norm.map.bias.weight   # spectrally normalised maps (8 x (6 + 4))
    c = torch.cat([y @ G.shared.weight.T, z[:, 8:]], dim=1)
    expected = (1 + c @ W_g.T)[:, :, None, None] * x / (1 + norm.bn.eps) ** 0.5 + (c @ W_b.T)[:, :, None, None]
    assert torch.allclose(norm(x, conds[1]), expected, atol=1e-5)
    # spectral normalisation of the maps (sigma 1) but not of the shared class table
    assert abs(float(torch.linalg.matrix_norm(W_g.detach(), ord=2)) - 1) < 1e-3
    assert not hasattr(G.shared, "parametrizations")


def test_orthogonal_init_of_every_weight_and_sigma0_monitoring():
    torch.manual_seed(2)
    G, D = generator(), discriminator(classifier_head=True, rotation_head=True)
    layers = [m for net in (G, D) for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(layers) > 15
    for layer in layers:
        W = weight_as_matrix(raw_weight(layer).detach())
        gram = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
        assert torch.allclose(gram, torch.eye(len(gram)), atol=1e-5), layer
        if getattr(layer, "bias", None) is not None:
            assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    with torch.no_grad():
        raw_weight(G.fc).mul_(torch.linspace(1, 3, G.fc.out_features)[:, None])
    s = torch.linalg.svdvals(raw_weight(G.fc).detach())
    sigma0, ratio = top_singular_values(G.fc)
    assert sigma0 == pytest.approx(float(s[0])) and ratio == pytest.approx(float(s[0] / s[1]))
    assert G.spectral_monitor() == {"fc": G.fc} and D.spectral_monitor() == {"conv_in": D.blocks[0].c1}


def test_the_rotation_loss_against_direct_computation():
    torch.manual_seed(3)
    D = discriminator(rotation_head=True).eval()
    x = torch.randn(3, 1, 16, 16)
    rotated, target = rotations(x)
    assert target.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert torch.equal(rotated[4], x[1].rot90(1, dims=(1, 2))) and torch.equal(rotated[11], x[2].rot90(3, dims=(1, 2)))
    assert torch.equal(rotated[6, 0, 0, 0], x[0, 0, -1, -1])          # 180 degrees: the top left was the bottom right
    loss, acc = rotation_loss(D, x)
    logits = torch.cat([D.rotation(D.features(torch.rot90(x, k, (2, 3)))) for k in range(4)])
    direct = -torch.log_softmax(logits, 1)[torch.arange(12), target].mean()
    assert torch.allclose(loss, direct, atol=1e-5)
    assert float(acc) == pytest.approx(float((logits.argmax(1) == target).float().mean()))


def make_s3gan(**kw) -> S3GAN:
    nets = {"G": generator(), "D": discriminator(classifier_head=True, rotation_head=True)}
    return S3GAN(nets, objective_class("hinge")(), DATA, latent_dim=12, **kw)


class Pool:
    """What setup reads of a prepared dataset."""

    def __init__(self, n: int = 200):
        g = torch.Generator().manual_seed(7)
        self.x = torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8, generator=g)
        self.y = torch.arange(n) % 10
        self.name = "pool"


def test_the_classifier_loss_reads_only_the_labelled_rows_and_the_rest_get_its_predictions():
    torch.manual_seed(4)
    algo = make_s3gan(label_fraction=0.1, rotation_weight_d=0.0, rotation_weight_g=0.0)
    facts = algo.setup(Pool(), torch.device("cpu"))
    assert facts["labelled"] == 20 and facts["labelled_per_class"] == [2] * 10
    index, subset_y = algo.state_modules["labelled"].index, algo.state_modules["labelled"].y
    assert torch.equal(subset_y, Pool().y[index])
    algo.eval()                           # SN's power iteration stays put, so the pieces can be recomputed
    stream = Batch(torch.rand(10, 1, 16, 16) * 2 - 1, torch.full((10,), 7))
    torch.manual_seed(5)
    real, y_real = algo.real_pairs(RecordingContext(stream))
    k = algo._rows_this_step
    assert k == 1 and torch.equal(real[k:], stream.x[k:])            # round(10 * 0.1) labelled rows at the head
    D = algo.nets["D"]
    assert torch.equal(y_real[k:], D.classifier(D.features(stream.x[k:])).argmax(1))    # c_CT's labels for the rest
    assert int(y_real[0]) in subset_y.tolist()
    logs = {}
    loss = algo.extra_d_loss(real, y_real, logs)
    direct = F.cross_entropy(D.classifier(D.features(real[:k])), y_real[:k])
    assert torch.allclose(loss, direct, atol=1e-5)
    # the unlabelled rows (their images and their predicted labels) do not enter the classifier loss
    other = torch.cat([real[:k], torch.zeros_like(real[k:])]), torch.cat([y_real[:k], (y_real[k:] + 1) % 10])
    assert torch.allclose(algo.extra_d_loss(*other, {}), loss, atol=1e-6)
    # with rotation: beta times the rotation loss of the last B/4 reals is added
    algo.rotation_weight_d = 1.0
    rot, _ = rotation_loss(D, real[-2:])
    assert torch.allclose(algo.extra_d_loss(real, y_real, logs), direct + rot, atol=1e-5)
    assert {"class_loss", "rotation_loss_d", "rotation_accuracy_d"} <= set(logs)


def test_g_rotation_loss_on_its_fakes_trains_g_only():
    torch.manual_seed(6)
    algo = make_s3gan(rotation_weight_g=0.2)
    algo.eval()
    G, D = algo.nets["G"], algo.nets["D"]
    fake = G(torch.randn(8, 12), F.one_hot(torch.arange(8), 10).float())
    from ganforge.algorithms.base import frozen
    with frozen(D):
        loss = algo.extra_g_loss(RecordingContext(None), fake, torch.arange(8), {})
        loss.backward()
    assert torch.allclose(loss, 0.2 * rotation_loss(D, fake[-2:].detach())[0], atol=1e-5)
    assert all(p.grad is None for p in D.parameters())
    assert G.fc.parametrizations.weight.original.grad.abs().sum() > 0


def test_the_labelled_subset_is_state_of_any_size_and_refuses_other_images():
    algo = make_s3gan(label_fraction=0.2)
    algo.setup(Pool(100), torch.device("cpu"))
    state = {k: v.clone() for k, v in algo.state_tensors().items()}
    assert state["labelled.x"].shape == (20, 1, 16, 16) and state["labelled.x"].dtype == torch.uint8
    fresh = make_s3gan(label_fraction=0.2)
    assert fresh.state_mismatch(state) is None
    fresh.load_state_tensors(state)
    assert all(torch.equal(fresh.state_tensors()[k], v) for k, v in state.items())
    wrong = {**state, "labelled.x": torch.zeros(20, 3, 16, 16, dtype=torch.uint8)}
    assert "holds images of [3, 16, 16], but this data's are [1, 16, 16]" in fresh.state_mismatch(wrong)
    assert "labelled.y is not in the checkpoint" in fresh.state_mismatch({k: v for k, v in state.items() if k != "labelled.y"})


def test_s3gan_refuses_a_discriminator_without_its_heads_in_one_line():
    nets = {"G": generator(), "D": discriminator()}
    with pytest.raises(ConfigError, match="classifier_head: true"):
        S3GAN(nets, objective_class("hinge")(), DATA, latent_dim=12)
    nets = {"G": generator(), "D": discriminator(classifier_head=True)}
    with pytest.raises(ConfigError, match="rotation_head: true"):
        S3GAN(nets, objective_class("hinge")(), DATA, latent_dim=12)
    assert S3GAN(nets, objective_class("hinge")(), DATA, latent_dim=12, rotation_weight_d=0,
                 rotation_weight_g=0).name == "s3gan"           # S2GAN-CO
    assert BigGAN({"G": generator(), "D": discriminator()}, objective_class("hinge")(), DATA, latent_dim=12)
