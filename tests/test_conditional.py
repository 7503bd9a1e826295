"""Class-conditional models: conditional batch / instance norm and the projection term against
NumPy written from their definitions, the label reaching the images, one trace for every
architecture and label batch, the supernet -> derived copy, and bad labels refused."""

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import cells, conditional, errors, models
from autogan_tf import search_space as ss

K = 3  # classes
EPS = 1e-5  # PyTorch's norm epsilon


def randomise(layer, seed):
    """Every weight of ``layer`` drawn anew, so per-class scales differ from one and shifts
    from zero (an untrained model would treat every class alike)."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(rng.normal(1.0 if "gamma" in v.path else 0.0, 0.5, v.shape).astype("float32"))


def np_class_affine(x, gamma, beta, labels):
    return x * gamma[labels][:, None, None, :] + beta[labels][:, None, None, :]


def test_class_affine_picks_each_images_scale_and_shift():
    layer = conditional.ClassAffine(K, 4)
    layer.build()
    randomise(layer, 0)
    x = np.random.default_rng(1).normal(size=(5, 3, 3, 4)).astype("float32")
    labels = np.array([2, 0, 1, 2, 0])
    want = np_class_affine(x, layer.gamma.numpy(), layer.beta.numpy(), labels)
    np.testing.assert_allclose(layer(x, tf.constant(labels)), want, rtol=1e-6, atol=1e-6)


def _cell_with_norm(norm):
    """Cell 0, post-activation, with ``norm``, conditional on K classes, weights random."""
    spec = ss.CellSpec(index=0, conv=0, norm=ss.NORM_TYPES.index(norm), up=0, shortcut=0,
                       skip_mask=0)
    cell = cells.FixedCell(spec, 4, num_classes=K)
    cell.build((None, 4, 4, 4))
    for name, op in cell.ops.items():
        if "class" in name:
            randomise(op, 2)
    return cell


def test_conditional_batch_norm_against_numpy():
    cell = _cell_with_norm("bn")
    assert not cell.ops["post1_bn"].scale and not cell.ops["post1_bn"].center
    x = np.random.default_rng(3).normal(2.0, 3.0, size=(6, 4, 4, 4)).astype("float32")
    labels = np.array([0, 1, 2, 2, 1, 0])
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # the batch's, biased
    affine = cell.ops["post1_bn_class"]
    want = np_class_affine((x - mean) / np.sqrt(var + EPS), affine.gamma.numpy(),
                           affine.beta.numpy(), labels)
    got = cell._norm("post1", ss.NORM_BN, tf.constant(x), True, tf.constant(labels))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conditional_instance_norm_against_numpy():
    cell = _cell_with_norm("in")
    x = np.random.default_rng(4).normal(-1.0, 2.0, size=(4, 5, 5, 4)).astype("float32")
    labels = np.array([2, 2, 0, 1])
    mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    affine = cell.ops["post1_in_class"]
    want = np_class_affine((x - mean) / np.sqrt(var + EPS), affine.gamma.numpy(),
                           affine.beta.numpy(), labels)
    got = cell._norm("post1", ss.NORM_IN, tf.constant(x), False, tf.constant(labels))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_projection_discriminator_adds_the_class_embeddings_inner_product():
    d = models.Discriminator(8, num_cells=2, num_classes=K)
    captured = {}
    real_term = conditional.projection_term

    def spy(layer, features, labels, training=None):
        captured["h"] = features.numpy()
        return real_term(layer, features, labels, training)

    x = tf.random.stateless_uniform([4, 16, 16, 3], (1, 2), -1.0, 1.0)
    labels = np.array([1, 0, 2, 1])
    conditional.projection_term, saved = spy, conditional.projection_term
    try:
        logits = d(x, labels=labels, training=False).numpy()
    finally:
        conditional.projection_term = saved
    h = captured["h"]
    # The embedding V / sigma(V) with sigma = u . V^T v from the stored power-iteration vectors
    # (inference mode runs no iteration), as PyTorch's spectral_norm in eval mode.
    sn = d.projection
    v_mat = sn.layer.kernel.numpy()  # [channels, classes]
    sigma = sn.u.numpy().ravel() @ v_mat.T @ sn.v.numpy().ravel()
    w5 = d.l5.layer.kernel.numpy()
    sigma5 = d.l5.u.numpy().ravel() @ w5.T @ d.l5.v.numpy().ravel()
    want = h @ w5[:, 0] / sigma5 + np.einsum("bc,cb->b", h, v_mat[:, labels]) / sigma
    np.testing.assert_allclose(logits[:, 0], want, rtol=1e-4, atol=1e-3)


def test_the_label_alone_changes_the_image():
    g = models.DerivedGenerator("1 1 0 1 0 2 1 1 1 1 1 1 0 3", gf_dim=8, num_classes=K)
    for layer in (g.embed, g.to_rgb.bn_class):
        randomise(layer, 5)
    z = tf.random.stateless_normal([2, 128], (3, 4))
    a = g(z, labels=[0, 0]).numpy()
    assert np.array_equal(a, g(z, labels=[0, 0]).numpy())  # nothing else changes it
    b = g(z, labels=[1, 0]).numpy()
    assert np.abs(a[0] - b[0]).max() > 1e-3  # the first image's class changed it...
    assert np.array_equal(a[1], b[1])  # ...and only its own (inference mode: no batch stats)


def test_one_trace_serves_several_architectures_and_label_batches():
    g = models.SuperGenerator(gf_dim=8, num_cells=3, num_classes=K)

    @tf.function
    def forward(z, arch, labels):
        return g(z, arch, stage=2, labels=labels, training=True)

    rng = np.random.default_rng(6)
    for vector in ("1 0 1 1 1 0 0 1 1 1 0 1 0 3", "0 1 0 0 0 2 1 1 1 0 2 2 1 3",
                   "1 2 2 1 1 1 2 0 0 1 1 0 1 2"):
        labels = tf.constant(rng.integers(0, K, 4), tf.int32)
        forward(tf.random.normal([4, 128]), tf.constant(ss.parse_arch(vector).to_list()),
                labels)
    assert forward.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("vector", ["0 1 0 0 0 2 1 1 1 0 2 2 1 3", "1 2 2 1 1 1 2 0 0 1 1 0 1 2"])
def test_supernet_to_derived_copy_keeps_the_conditional_weights(vector):
    supernet = models.SuperGenerator(gf_dim=8, num_cells=3, num_classes=K)
    randomise(supernet.embed, 7)
    for cell in supernet.cells:
        for name, op in cell.ops.items():
            if "class" in name:
                randomise(op, 8)
    derived = models.derive_generator(supernet, vector)
    used = [name for cell in derived.cells for name in cell.ops if "class" in name]
    assert used, "the architecture uses a norm, so it has class affines"
    z = tf.random.stateless_normal([4, 128], (5, 6))
    labels = tf.constant([2, 1, 0, 2])
    arch = tf.constant(ss.parse_arch(vector).to_list())
    np.testing.assert_array_equal(derived(z, labels=labels),
                                  supernet(z, arch, labels=labels))


def test_class_affines_of_an_unselected_norm_are_unused():
    supernet = models.SuperGenerator(gf_dim=8, num_cells=1, num_classes=K)
    arch = tf.constant([1, ss.NORM_BN, 0, 0])  # pre-activation, batch norm
    used = {v.path.split("/", 1)[1]: bool(flag) for v, flag in supernet.variable_usage(arch)}
    assert used["cell1/pre1_bn_class/gamma"] and used["cell1/pre2_bn_class/beta"]
    assert not used["cell1/pre1_in_class/gamma"] and not used["cell1/post1_bn_class/gamma"]
    assert used["embed/embeddings"] and used["to_rgb/bn_class/gamma"]


def test_an_unconditional_cell_has_the_same_ops_as_before():
    names = [op.name for op in ss.cell_ops(2)]
    assert not any("class" in name for name in names)
    extra = set(op.name for op in ss.cell_ops(2, conditional=True)) - set(names)
    assert extra == {f"{c}{b}_{n}_class" for c in ("pre", "post") for b in (1, 2)
                     for n in ("bn", "in")}


@pytest.mark.parametrize("labels, message", [
    ([0, 3], "class 3 is out of range"),
    ([-1, 0], "class -1 is out of range"),
    ([0.0, 1.0], "must be integers"),
    ([[0], [1]], "one class index per image"),
    (None, "needs one label per image"),
])
def test_bad_labels_are_refused_naming_them(labels, message):
    g = models.DerivedGenerator("1 0 1 1 1 0 0 1 1 1 0 1 0 3", gf_dim=8, num_classes=K)
    with pytest.raises(errors.UserError, match=f"labels: .*{message}"):
        g(tf.zeros([2, 128]), labels=labels)


def test_an_out_of_range_label_fails_a_traced_step_too():
    d = models.Discriminator(8, num_cells=2, num_classes=K)
    step = tf.function(lambda x, y: d(x, labels=y))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels: a class is out of range"):
        step(tf.zeros([2, 16, 16, 3]), tf.constant([0, K]))


def test_unconditional_models_refuse_labels():
    g = models.DerivedGenerator("1 0 1 1 1 0 0 1 1 1 0 1 0 3", gf_dim=8)
    with pytest.raises(errors.UserError, match="unconditional"):
        g(tf.zeros([1, 128]), labels=[0])
    with pytest.raises(ValueError, match="num_classes must be 0"):
        models.Discriminator(8, num_classes=1)


def test_official_weight_mapping_refuses_a_conditional_generator():
    from autogan_tf.official import weights

    g = models.DerivedGenerator("1 0 1 1 1 0 0 1 1 1 0 1 0 3", gf_dim=8, num_classes=K)
    with pytest.raises(weights.WeightMappingError, match="no class-conditional generator"):
        weights.generator_state(g, "search")


# -- training ------------------------------------------------------------------------------
def _conditional_config(classifier, **overrides):
    from autogan_tf import config as config_lib

    from conftest import TINY_GAN

    base = dict(arch="0 1 0 0 0 2 1 1 1 0 2 2 1 3", **TINY_GAN, max_iters=4, log_every=2,
                save_every=2, eval_every=0, eval_num_samples=0, classifier=classifier,
                ema_decay=0.9, conditional=True)
    base.update(overrides)
    return config_lib.TrainConfig(**base)


def test_a_conditional_run_records_its_classes_and_resumes_as_if_never_stopped(
        tmp_path, tiny_classifier):
    from autogan_tf import training

    straight = str(tmp_path / "straight")
    training.train(_conditional_config(tiny_classifier), straight, progress=False)
    stopped = str(tmp_path / "stopped")
    training.train(_conditional_config(tiny_classifier, max_iters=2), stopped, progress=False)
    training.train(_conditional_config(tiny_classifier), stopped, progress=False)
    a, config, _ = training.restore_generator(straight)
    b, _, _ = training.restore_generator(stopped)
    assert config.conditional and config.num_classes == 8  # the shapes' classes, recorded
    assert a.num_classes == 8
    # The labels asked of G and the labelled real batches resume where they stopped.
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6, err_msg=x.path)
    z = tf.zeros([2, 4])
    assert not np.array_equal(a(z, labels=[0, 0]), a(z, labels=[0, 5]))
    # autogan-evaluate's job, with intra-FID: 16 images, 2 per class.
    scores = training.evaluate_run(straight, num_samples=16, batch_size=8, intra_fid=True)
    assert 0 <= scores["class_accuracy"] <= 1 and len(scores["intra_fid_per_class"]) == 8
    assert scores["intra_fid_samples_per_class"] == 2 and scores["intra_fid"] > 0


def test_conditional_on_one_class_is_refused(tmp_path, tiny_classifier):
    from autogan_tf import training

    folder = tmp_path / "one" / "train"
    folder.mkdir(parents=True)
    from PIL import Image

    for i in range(4):
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(folder / f"{i}.png")
    config = _conditional_config(tiny_classifier, dataset=f"folder:{tmp_path / 'one'}")
    with pytest.raises(errors.UserError, match="--conditional: .* has 1 class"):
        training.train(config, str(tmp_path / "run"), progress=False)


def test_sampling_asks_for_balanced_classes_unless_told():
    from autogan_tf import sampling

    g = models.DerivedGenerator("0 1 0 0 0 2 1 1 1 0 2 2 1 3", gf_dim=8, num_classes=K)
    for layer in (g.embed, g.to_rgb.bn_class):
        randomise(layer, 9)
    images = sampling.generate(g, 5, seed=3, batch_size=2)
    z = sampling.latents(3, 0, 5, 128)
    want = sampling.generate(g, 5, seed=3, batch_size=2, labels=[0, 1, 2, 0, 1])
    np.testing.assert_array_equal(images, want)  # row i asks for class i mod K
    direct = np.clip(g(z, labels=[0, 1, 2, 0, 1]).numpy() * 127.5 + 127.5, 0, 255)
    assert np.abs(direct.astype(np.uint8).astype(int) - images.astype(int)).max() <= 1
    other = sampling.generate(g, 5, seed=3, labels=[2, 2, 2, 2, 2])
    assert not np.array_equal(other, images)
    with pytest.raises(errors.UserError, match="class 3 is out of range"):
        sampling.generate(g, 2, labels=[0, 3])


def test_a_conditional_search_trains_the_supernet_on_labels_and_scores_every_class(tmp_path):
    import json
    import os

    from autogan_tf.search import loop as search

    from conftest import brightness_reward
    from test_search import tiny_config

    model_dir = str(tmp_path / "s")
    result = search.run_search(tiny_config(conditional=True), model_dir,
                               reward_fn=brightness_reward, progress=False)
    with open(os.path.join(model_dir, "search_config.json")) as f:
        assert json.load(f)["num_classes"] == 8
    assert ss.parse_arch(result["top_archs"][0]["arch"]).num_cells == 2
    # The final supernet, loaded back, is conditional, and its rewards' sampler asks for
    # class-balanced images (`sampling.balanced_labels`, tested above).
    searched = search.load_search(model_dir, reward_fn=brightness_reward)
    assert searched.shared.generator.num_classes == 8
    images = searched.images(result["top_archs"][0]["arch"], 16, 1, 0)
    assert images.shape == (16, 16, 16, 3)
    assert searched.shared.images._sampler(1).num_classes == 8


# -- evaluation ------------------------------------------------------------------------------
def test_requested_class_accuracy_on_a_hand_built_case():
    from autogan_tf.metrics import streaming

    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 2.0, 5.0], [1.0, 0.0, 0.0]])
    assert streaming.requested_class_accuracy(logits, [0, 1, 1, 2]) == 0.5
    with pytest.raises(ValueError, match="3 requested classes for 4 images"):
        streaming.requested_class_accuracy(logits, [0, 1, 2])


def test_evaluation_reports_how_often_the_requested_class_is_recognised(tiny_classifier):
    from autogan_tf import sampling
    from autogan_tf.metrics import evaluator

    g = models.DerivedGenerator("0 1 0 0 0 2 1 1 1 0 2 2 1 3", gf_dim=8, latent_dim=4,
                                num_classes=8)
    for layer in (g.embed, g.to_rgb.bn_class):
        randomise(layer, 10)
    scorer = evaluator.Evaluator(tiny_classifier, image_size=32, batch_size=10)
    scores = scorer(g, 40, seed=2)
    images = sampling.generate(g, 40, seed=2, batch_size=10)
    logits = np.concatenate([np.asarray(scorer.extractor(images[i:i + 10])[0])
                             for i in range(0, 40, 10)])
    want = np.mean(np.argmax(logits, -1) == np.arange(40) % 8)
    assert scores["class_accuracy"] == pytest.approx(want)
    # An unconditional generator, or a classifier of other classes: no such score.
    plain = models.DerivedGenerator("0 1 0 0 0 2 1 1 1 0 2 2 1 3", gf_dim=8, latent_dim=4)
    assert "class_accuracy" not in scorer(plain, 20, seed=2)
    three = models.DerivedGenerator("0 1 0 0 0 2 1 1 1 0 2 2 1 3", gf_dim=8, latent_dim=4,
                                    num_classes=3)
    assert "class_accuracy" not in scorer(three, 20, seed=2)


def test_api_generate_takes_labels():
    from autogan_tf import api

    g = models.DerivedGenerator("0 1 0 0 0 2 1 1 1 0 2 2 1 3", gf_dim=8, latent_dim=4,
                                num_classes=K)
    assert api.generate(g, 3, seed=1, labels=[2, 2, 0]).shape == (3, 32, 32, 3)
    with pytest.raises(errors.UserError, match="labels: one class per image: 3 images"):
        api.generate(g, 3, labels=[0])


def test_the_class_accuracy_reward(tmp_path, tiny_classifier):
    import os

    from autogan_tf.metrics import classifiers
    from autogan_tf.search import loop as search

    from conftest import read_jsonl
    from test_search import tiny_config

    with pytest.raises(errors.UserError, match="class_accuracy .* needs --conditional"):
        tiny_config(reward="class_accuracy")
    config = tiny_config(conditional=True, reward="class_accuracy", classifier=tiny_classifier,
                         reward_num_images=16, max_search_iters=2, grow_steps="1")
    search.run_search(config, str(tmp_path / "s"), progress=False)
    rewards = [r["reward"] for r in read_jsonl(os.path.join(tmp_path, "s", "search_log.jsonl"))
               if "ctrl_step" in r]
    # A fraction of 16 images, each right or wrong.
    assert rewards and all(0 <= r <= 1 and abs(16 * r - round(16 * r)) < 1e-9 for r in rewards)

    three = str(tmp_path / "three.keras")
    classifiers.build_classifier(num_classes=3, image_size=32, width=4).save(three)
    other = config.replace(classifier=three)
    with pytest.raises(errors.UserError, match="class_accuracy: the scorer .* has 3 classes"):
        search.run_search(other, str(tmp_path / "s3"), progress=False)


def _np_fid(a, b):
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_intra_fid_against_per_class_numpy(tiny_classifier):
    from autogan_tf import data, sampling
    from autogan_tf.metrics import evaluator, streaming

    g = models.DerivedGenerator("0 1 0 0 0 2 1 1 1 0 2 2 1 3", gf_dim=8, latent_dim=4,
                                num_classes=8)
    for layer in (g.embed, g.to_rgb.bn_class):
        randomise(layer, 11)
    scorer = evaluator.Evaluator(tiny_classifier, image_size=32, batch_size=50)
    references = streaming.class_statistics("shapes", scorer.extractor, 8, split="test",
                                            batch_size=250, image_size=32)
    result = scorer.intra_fid(g, 30, references, seed=4)
    # The same from features computed here: real images of each class, 30 generated ones.
    real = [(x, y) for x, y in data.make_uint8_dataset("shapes", 250, 32, split="test",
                                                       with_labels=True).as_numpy_iterator()]
    images = np.concatenate([x for x, _ in real])
    labels = np.concatenate([y for _, y in real])
    features = np.concatenate([np.asarray(scorer.extractor(images[i:i + 250])[1])
                               for i in range(0, len(images), 250)])
    want = []
    for c in range(8):
        fake = sampling.generate(g, 30, seed=4, batch_size=50, labels=[c] * 30)
        fake_features = np.asarray(scorer.extractor(fake)[1])
        want.append(_np_fid(features[labels == c], fake_features))
    np.testing.assert_allclose(result["intra_fid_per_class"], want, rtol=2e-3, atol=1e-3)
    assert result["intra_fid"] == pytest.approx(np.mean(want), rel=2e-3)
    with pytest.raises(errors.UserError, match="intra-FID: 3 classes of real statistics"):
        scorer.intra_fid(g, 30, references[:3])
