"""Test helpers shared by the tests and benchmarks (import explicitly; needs TensorFlow).

* `TinyGenerator`: a small stand-in honouring the generator contract
  (``generator(z, training=False)`` -> float32 ``[B, H, W, 3]`` in [-1, 1],
  attribute ``latent_dim``, BatchNorm in inference mode) so export and serving
  can be tested in seconds without the real AutoGAN generator.
* `predict_server`: a TF Serving Predict API stand-in (gRPC + REST) on loopback.
* `cluster`: ``TF_CONFIG`` values for a multi-worker cluster on localhost ports.
"""

from __future__ import annotations


def TinyGenerator(latent_dim: int = 8, bottom_width: int = 4, channels: int = 8,
                  seed: int = 0):
    """Dense -> Reshape -> BatchNorm -> ReLU -> Conv2DTranspose(x2) -> tanh.

    Images are ``2 * bottom_width`` pixels square. The BatchNorm moving
    statistics are set away from their (0, 1) defaults so that a model run in
    training mode by mistake gives visibly different images.
    """
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    z = keras.Input((latent_dim,), name="z")
    h = keras.layers.Dense(bottom_width * bottom_width * channels)(z)
    h = keras.layers.Reshape((bottom_width, bottom_width, channels))(h)
    bn = keras.layers.BatchNormalization()
    h = keras.layers.ReLU()(bn(h))
    h = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same")(h)
    out = keras.layers.Activation("tanh")(h)
    model = keras.Model(z, out, name="tiny_generator")
    rng = np.random.default_rng(seed)
    bn.moving_mean.assign(rng.normal(0.0, 0.5, channels).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
    model.latent_dim = latent_dim
    return model
