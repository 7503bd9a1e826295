"""The autogan-* command lines. Importing this package quiets TensorFlow's start-up chatter."""

import logging as _logging
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_logging.getLogger("tensorflow").setLevel(_logging.WARNING)
