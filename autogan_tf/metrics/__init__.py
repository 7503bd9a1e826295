"""IS / FID evaluation: the 2015 Inception graph, Keras stand-in classifiers, scores.

* :mod:`~autogan_tf.metrics.inception` -- locate/download and wrap the
  2015-12-05 Inception graph (``check_inception_available``, ``load_inception``).
* :mod:`~autogan_tf.metrics.classifiers` -- ``load_feature_extractor`` for
  ``inception`` or a ``.keras`` classifier; the small CPU classifier.
* :mod:`~autogan_tf.metrics.scores` -- Inception Score, Frechet distance,
  TTUR-format statistics files (NumPy/SciPy only).
* :mod:`~autogan_tf.metrics.evaluate` -- streaming statistics of data sets
  and generators, ``to_uint8``.
"""

from autogan_tf.metrics.classifiers import (ClassifierError, KerasClassifierExtractor,  # noqa: F401
                                            load_feature_extractor)
from autogan_tf.metrics.evaluate import (compute_statistics, dataset_statistics,  # noqa: F401
                                         generator_scores, to_uint8)
from autogan_tf.metrics.inception import (InceptionGraphError,  # noqa: F401
                                          InceptionUnavailableError, check_inception_available,
                                          load_inception)
from autogan_tf.metrics.scores import (Statistics, StatsError, frechet_distance,  # noqa: F401
                                       inception_score, inception_score_from_logits,
                                       load_statistics, save_statistics)
