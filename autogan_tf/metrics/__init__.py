"""IS / FID / KID evaluation: the 2015 Inception graph, Keras stand-in classifiers, scores.

* :mod:`~autogan_tf.metrics.inception` -- locate/download and wrap the
  2015-12-05 Inception graph (``check_inception_available``, ``load_inception``).
* :mod:`~autogan_tf.metrics.classifiers` -- ``load_feature_extractor`` for
  ``inception`` or a ``.keras`` classifier; the small CPU classifier.
* :mod:`~autogan_tf.metrics.label_free` -- feature networks learnt from images
  without labels (rotation, contrastive, random), for FID/KID of unlabelled folders.
* :mod:`~autogan_tf.metrics.scorer` -- the network a run scores with: ``auto`` and
  ``label_free:KIND`` trained on the data set and cached in the run directory.
* :mod:`~autogan_tf.metrics.scores` -- Inception Score, Frechet distance,
  TTUR-format statistics files (NumPy/SciPy only).
* :mod:`~autogan_tf.metrics.streaming` -- statistics of data sets and generators
  computed batch by batch, and the FID between two image sources.
* :mod:`~autogan_tf.metrics.evaluator` -- ``Evaluator``: IS/FID of a generator with one
  classifier and fixed reference statistics.
"""
