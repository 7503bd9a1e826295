"""IS / FID evaluation: the 2015 Inception graph, Keras stand-in classifiers, scores."""
