"""Clients for an exported generator: TF Serving over gRPC or REST, or the SavedModel in-process.

All three share one interface (`Predictor`)::

    client = PredictClient("localhost:8500", protocol="grpc", model_name="autogan")
    client = PredictClient("localhost:8501", protocol="rest", model_name="autogan")
    client = LocalGenerator("models/autogan")        # newest version, or a version dir
    images = client.generate(num_samples=16, seed=0)  # uint8 [16, H, W, 3]
    pngs = client.generate_png(16, seed=0)            # list of PNG file contents
    images = client.predict_z(z)                      # z float32 [B, latent_dim]
    images = client.generate(3, seed=0, labels=[3, 3, 7])  # a --conditional export's classes

A failed request raises `ServingError` carrying the canonical status code name
(``INVALID_ARGUMENT``, ``NOT_FOUND``, ...) and the server's message, whichever
protocol produced it; the message of a batch-guard assertion is kept readable.

`PredictClient` never imports TensorFlow (nor ``tensorflow_serving``, whose
messages would): REST is JSON, gRPC needs ``grpcio`` and ``protobuf`` only,
with the Predict messages of `proto`. Only `LocalGenerator`, which
runs the SavedModel, imports TensorFlow.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request

import numpy as np

from autogan_tf import errors
from autogan_tf.images import make_grid, save_png
from autogan_tf.serving import proto as serving_proto
from autogan_tf.serving.export import (GENERATE, IMAGES, LABELS, NUM_SAMPLES, PNG, SEED,
                                       SERVING_DEFAULT, Z, latest_version_dir)

INT32 = (-2 ** 31, 2 ** 31 - 1)
INT64 = (-2 ** 63, 2 ** 63 - 1)

# Canonical status code <-> HTTP status, as TF Serving's REST front end maps them.
HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 412,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
_CODE_FOR_HTTP = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "NOT_FOUND", 409: "ABORTED", 412: "FAILED_PRECONDITION",
                  429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 501: "UNIMPLEMENTED",
                  503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class ServingError(errors.AutoganError, RuntimeError):
    """The server (or the local SavedModel) refused or failed a request.

    Args:
      code: the canonical status code name (``INVALID_ARGUMENT``, ``UNAVAILABLE``, ...),
        kept as ``code``.
      message: the server's (or the SavedModel's) message, kept as ``message``.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RequestError(errors.UserError):
    """A request that cannot even be encoded (e.g. a seed outside int64)."""


def readable_tf_error(message: str) -> str:
    """Reduce a TF op error to its assertion text when there is one.

    ``tf.debugging.assert_*`` failures arrive wrapped in "Graph execution
    error", node names and tensor dumps; the first bracketed string is the
    message the exporter wrote.

    Args:
      message: the text of a TensorFlow op error.

    Returns:
      The assertion's text, else the first line that is not TensorFlow's framing, else the
      message itself.
    """
    found = re.search(r"assertion failed: \[([^\]]*)\]", message)
    if found:
        return found.group(1).strip().rstrip(".").strip()
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Graph execution error", "Detected at",
                                                       "<stack traces", "[["))]
    return (useful or lines or [message])[0]


def _check_int(name, value, bounds):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise RequestError(f"{name} must be an integer, got {value!r}")
    if not bounds[0] <= int(value) <= bounds[1]:
        raise RequestError(f"{name}={value} is outside the {('int32', 'int64')[bounds == INT64]}"
                           f" range [{bounds[0]}, {bounds[1]}]")
    return int(value)


def label_inputs(labels, rows: int) -> np.ndarray:
    """A conditional export's ``labels`` input: int32 ``[rows]``, one class per image.

    The model checks the range (it knows its classes); this checks what a request can
    encode, so a typo fails here with the input's name.

    Args:
      labels: a sequence of integers (-1 asks ``generate`` for a random class).
      rows: the images requested.

    Raises:
      RequestError: not integers, outside int32, or not one per image.
    """
    values = [_check_int("labels", v, INT32) for v in np.asarray(labels).ravel().tolist()]
    if np.ndim(labels) != 1 or len(values) != rows:
        raise RequestError(f"labels: one class per image: {rows} images, got "
                           f"{len(values)} labels")
    return np.asarray(values, np.int32)


def generate_inputs(num_samples, seed, labels=None) -> dict:
    """The ``generate`` signature's inputs, typed as it declares them (int32, int64 scalars,
    and a conditional export's int32 labels).

    Args:
      num_samples: how many images; an integer within int32.
      seed: the seed; an integer within int64.
      labels: None for an unconditional export; else one class per image (`label_inputs`).

    Returns:
      ``{"num_samples": np.int32, "seed": np.int64}`` (and ``"labels"``).

    Raises:
      RequestError: a value that is not an integer (bools included) or is out of range.
    """
    inputs = {NUM_SAMPLES: np.int32(_check_int("num_samples", num_samples, INT32)),
              SEED: np.int64(_check_int("seed", seed, INT64))}
    if labels is not None:
        inputs[LABELS] = label_inputs(labels, int(inputs[NUM_SAMPLES]))
    return inputs


def _as_uint8_images(value) -> np.ndarray:
    images = np.asarray(value)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ServingError("INTERNAL", f"expected images [N, H, W, 3], got shape {images.shape}")
    return images.astype(np.uint8)


def _one_instead_of_none(signature: str, inputs: dict):
    """For a request of zero images, the inputs of the same request for one image (None for
    any other request)."""
    one_label = {LABELS: np.zeros([1], np.int32)} if LABELS in inputs else {}
    if signature == GENERATE and NUM_SAMPLES in inputs and int(inputs[NUM_SAMPLES]) == 0:
        return {**inputs, NUM_SAMPLES: np.int32(1), **one_label}
    value = np.asarray(inputs.get(Z, ()))
    if signature == SERVING_DEFAULT and value.ndim == 2 and value.shape[0] == 0:
        return {**inputs, Z: np.zeros([1, value.shape[1]], value.dtype), **one_label}
    return None


class Predictor:
    """The shared surface: subclasses implement `predict` for their transport."""

    signature = SERVING_DEFAULT
    where = "the model"  # where requests go, for messages: an address or a directory

    def predict(self, signature: str, inputs: dict, outputs=None) -> dict:
        """Run ``signature`` on numpy ``inputs``; return the (optionally filtered) outputs.

        Args:
          signature: the signature's name (``serving_default``, ``generate``).
          inputs: input name -> numpy value, typed as the signature declares.
          outputs: the output names wanted (None: all).

        Returns:
          Output name -> numpy array.

        Raises:
          ServingError: the request was refused or failed.
        """
        raise NotImplementedError

    def generate_outputs(self, num_samples: int, seed: int, labels=None) -> dict:
        """Both outputs of ``generate``: ``images`` uint8 and ``png_bytes`` (list of bytes).

        Args:
          num_samples: how many images.
          seed: the seed naming the noise; the same seed gives the same images.
          labels: a conditional export's class of each image (-1: random); None otherwise.

        Returns:
          ``{"images": uint8 [num_samples, H, W, 3], "png_bytes": [bytes, ...]}``.

        Raises:
          RequestError: ``num_samples`` or ``seed`` cannot be encoded.
          ServingError: the request was refused or failed.
        """
        out = self.predict(GENERATE, generate_inputs(num_samples, seed, labels), (IMAGES, PNG))
        return {IMAGES: _as_uint8_images(out[IMAGES]),
                PNG: [bytes(b) for b in np.asarray(out[PNG], dtype=object).ravel()]}

    def generate(self, num_samples: int, seed: int, labels=None) -> np.ndarray:
        """Images from the ``generate`` signature.

        Args:
          num_samples: how many images.
          seed: the seed naming the noise; the same seed gives the same images.
          labels: a conditional export's class of each image (-1: random); None otherwise.

        Returns:
          uint8 ``[num_samples, H, W, 3]``.

        Raises:
          RequestError: ``num_samples`` or ``seed`` cannot be encoded.
          ServingError: the request was refused or failed.
        """
        out = self.predict(GENERATE, generate_inputs(num_samples, seed, labels), (IMAGES,))
        return _as_uint8_images(out[IMAGES])

    def generate_png(self, num_samples: int, seed: int, labels=None) -> list:
        """PNG-encoded images from the ``generate`` signature (the model's own encoding).

        Args:
          num_samples: how many images.
          seed: the seed naming the noise; the same seed gives the same images.
          labels: a conditional export's class of each image (-1: random); None otherwise.

        Returns:
          A list of ``num_samples`` PNG file contents (bytes).

        Raises:
          RequestError: ``num_samples`` or ``seed`` cannot be encoded.
          ServingError: the request was refused or failed.
        """
        out = self.predict(GENERATE, generate_inputs(num_samples, seed, labels), (PNG,))
        return [bytes(b) for b in np.asarray(out[PNG], dtype=object).ravel()]

    def predict_z(self, z, labels=None) -> np.ndarray:
        """Images for the caller's noise, through this predictor's ``signature``.

        Args:
          z: ``[batch, latent_dim]`` noise, converted to float32.
          labels: a conditional export's class of each row of ``z``; None otherwise.

        Returns:
          uint8 ``[batch, H, W, 3]``.

        Raises:
          RequestError: labels that cannot be encoded or are not one per row.
          ServingError: the request was refused or failed (e.g. a wrong width or batch).
        """
        z = np.asarray(z, dtype=np.float32)
        inputs = {Z: z}
        if labels is not None:
            inputs[LABELS] = label_inputs(labels, len(z))
        return _as_uint8_images(self.predict(self.signature, inputs, (IMAGES,))[IMAGES])


class LocalGenerator(Predictor):
    """The exported SavedModel run in this process, with the server's input validation.

    Inputs are checked against the signature's dtypes and shapes before running, and failures
    raise `ServingError` with the status code TF Serving would return, so code tested against
    this class behaves the same against a server.

    Args:
      saved_model_path: a SavedModel directory or an export directory (its newest version).
      signature: the signature `predict_z` uses.

    Raises:
      ExportError: ``saved_model_path`` holds no SavedModel.
    """

    def __init__(self, saved_model_path: str, signature: str = SERVING_DEFAULT):
        import tensorflow as tf

        self.path = latest_version_dir(saved_model_path)
        self.where = self.path
        self.signature = signature
        self._loaded = tf.saved_model.load(self.path)
        self.signatures = dict(self._loaded.signatures)

    def input_specs(self, signature: str) -> dict:
        """{input name: tf.TensorSpec} of ``signature``; FAILED_PRECONDITION if it is unknown.

        Args:
          signature: the signature's name.
        """
        if signature not in self.signatures:
            raise ServingError("FAILED_PRECONDITION",
                               f'Serving signature key "{signature}" not found; this model '
                               f"has {sorted(self.signatures)}")
        return dict(self.signatures[signature].structured_input_signature[1])

    def output_specs(self, signature: str) -> dict:
        """{output name: tf.TensorSpec} of ``signature``; FAILED_PRECONDITION if it is unknown.

        Args:
          signature: the signature's name.

        Returns:
          The signature's structured outputs.

        Raises:
          ServingError: the model has no such signature.
        """
        self.input_specs(signature)
        return dict(self.signatures[signature].structured_outputs)

    def _convert(self, signature, inputs):
        import tensorflow as tf

        specs = self.input_specs(signature)
        if set(inputs) != set(specs):
            raise ServingError("INVALID_ARGUMENT",
                               f"signature {signature} takes inputs {sorted(specs)}, "
                               f"got {sorted(inputs)}")
        tensors = {}
        for name, spec in specs.items():
            value = np.asarray(inputs[name])
            if value.dtype != spec.dtype.as_numpy_dtype:
                raise ServingError("INVALID_ARGUMENT",
                                   f"input {name} must be {spec.dtype.name}, got {value.dtype}")
            if not spec.shape.is_compatible_with(value.shape):
                raise ServingError("INVALID_ARGUMENT",
                                   f"input {name} must have shape {_shape_text(spec.shape)}, "
                                   f"got {list(value.shape)}")
            tensors[name] = tf.constant(value)
        return tensors

    def predict(self, signature: str, inputs: dict, outputs=None) -> dict:
        """Run ``signature`` of the SavedModel on numpy ``inputs`` (see `Predictor.predict`).

        Args:
          signature: the signature's name.
          inputs: input name -> numpy value; the names, dtypes and shapes must match.
          outputs: the output names wanted (None: all).

        Returns:
          Output name -> numpy array.

        Raises:
          ServingError: unknown signature or outputs, mismatched inputs, or an op error (such as
            a batch-guard assertion), with the matching status code.
        """
        import tensorflow as tf

        tensors = self._convert(signature, inputs)
        try:
            result = self.signatures[signature](**tensors)
        except tf.errors.OpError as err:
            raise ServingError(_TF_CODE_NAMES.get(type(err).__name__, "UNKNOWN"),
                               readable_tf_error(err.message)) from None
        names = list(result) if outputs is None else list(outputs)
        missing = [n for n in names if n not in result]
        if missing:
            raise ServingError("INVALID_ARGUMENT", f"unknown outputs {missing} of {signature}; "
                               f"it has {sorted(result)}")
        return {n: result[n].numpy() for n in names}


def connect(server: str | None = None, saved_model: str | None = None, protocol: str = "grpc",
            model_name: str = "autogan", version: int | None = None,
            timeout: float = 60.0) -> Predictor:
    """A `Predictor` for exactly one of a TF Serving address or an export directory.

    Args:
      server: ``HOST:PORT`` of TF Serving (gRPC usually 8500, REST 8501).
      saved_model: an export directory (or one version of it), run in this process.
      protocol, model_name, version, timeout: how to talk to ``server`` (see
        `PredictClient`); unused with ``saved_model``.

    Returns:
      A `PredictClient` or a `LocalGenerator`: the same images for the same seed.

    Raises:
      errors.UserError: neither or both of ``server`` and ``saved_model``, a bad
        address or protocol, or an export directory without a SavedModel.
    """
    if (server is None) == (saved_model is None):
        raise errors.UserError("give exactly one of --server=HOST:PORT or --saved_model=DIR")
    if saved_model is not None:
        return LocalGenerator(saved_model)
    return PredictClient(server, protocol, model_name, version=version, timeout=timeout)


_TF_CODE_NAMES = {
    "InvalidArgumentError": "INVALID_ARGUMENT", "ResourceExhaustedError": "RESOURCE_EXHAUSTED",
    "FailedPreconditionError": "FAILED_PRECONDITION", "OutOfRangeError": "OUT_OF_RANGE",
    "UnimplementedError": "UNIMPLEMENTED", "InternalError": "INTERNAL",
    "NotFoundError": "NOT_FOUND", "UnknownError": "UNKNOWN",
}


def _shape_text(shape) -> str:
    dims = shape.as_list() if shape.rank is not None else None
    return "unknown" if dims is None else "[" + ", ".join(
        "batch" if d is None else str(d) for d in dims) + "]"


class PredictClient(Predictor):
    """A TF Serving Predict client; ``protocol`` "grpc" (port 8500) or "rest" (port 8501).

    No connection is made here: the gRPC channel opens at the first request, and REST opens a
    connection per request.

    Args:
      server: ``HOST:PORT`` of TF Serving (an IPv6 host in brackets).
      protocol: "grpc" or "rest".
      model_name: the model's name on the server (its ``--model_name``).
      signature: the signature `predict_z` uses.
      version: ask for this model version (None: the server's choice, normally the newest).
      timeout: seconds a request may take.

    Raises:
      errors.UserError: an unknown protocol or a malformed address.
    """

    def __init__(self, server: str, protocol: str = "grpc", model_name: str = "autogan",
                 signature: str = SERVING_DEFAULT, version: int | None = None,
                 timeout: float = 60.0):
        if protocol not in ("grpc", "rest"):
            raise errors.UserError(f"--protocol must be 'grpc' or 'rest', got {protocol!r}")
        if not re.fullmatch(r"[^\s:/]+:\d+|\[[0-9a-fA-F:]+\]:\d+", server or ""):
            raise errors.UserError(f"--server must be HOST:PORT, got {server!r}")
        self.server = server
        self.protocol = protocol
        self.where = f"{protocol}://{server}"
        self.model_name = model_name
        self.signature = signature
        self.version = version
        self.timeout = timeout
        self._stub = None

    # -- gRPC ---------------------------------------------------------------
    def _grpc_predict(self):
        """The Predict method of the server's PredictionService, on a channel opened once."""
        if self._stub is None:
            import grpc

            messages = serving_proto.messages()
            self._channel = grpc.insecure_channel(self.server, options=[
                ("grpc.max_receive_message_length", 256 * 1024 * 1024)])
            self._stub = self._channel.unary_unary(
                serving_proto.PREDICT_METHOD,
                request_serializer=lambda request: request.SerializeToString(),
                response_deserializer=messages["PredictResponse"].FromString)
        return self._stub

    def _predict_grpc(self, signature, inputs, outputs):
        import grpc

        try:
            request = serving_proto.predict_request(self.model_name, signature, inputs, outputs,
                                                    self.version)
        except TypeError as err:
            raise RequestError(str(err)) from None
        try:
            response = self._grpc_predict()(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise ServingError(err.code().name, err.details() or str(err)) from None
        try:
            return {name: serving_proto.to_ndarray(proto)
                    for name, proto in response.outputs.items()}
        except TypeError as err:
            raise ServingError("INTERNAL", str(err)) from None

    # -- REST ---------------------------------------------------------------
    def _url(self, verb=""):
        path = f"http://{self.server}/v1/models/{self.model_name}"
        if self.version is not None:
            path += f"/versions/{int(self.version)}"
        return path + verb

    def _predict_rest(self, signature, inputs, outputs):
        one = _one_instead_of_none(signature, inputs)
        if one is not None:
            # JSON cannot say "0 rows of 8": [] is shape [0], which the signature refuses,
            # and an empty reply [] loses the image shape. Ask for one row and keep none.
            result = self._predict_rest(signature, one, outputs)
            return {name: value[:0] for name, value in result.items()}
        body = {"signature_name": signature,
                "inputs": {name: to_json_value(value) for name, value in inputs.items()}}
        reply = self._http("POST", self._url(":predict"), body)
        result = reply.get("outputs")
        if result is None:
            raise ServingError("INTERNAL", f"no 'outputs' in the reply of {self._url()}")
        if not isinstance(result, dict):
            # TF Serving drops the name when a signature has a single output.
            if not outputs or len(outputs) != 1:
                raise ServingError("INTERNAL", "the server returned one unnamed output; "
                                   "ask for exactly one output")
            result = {outputs[0]: result}
        names = list(result) if not outputs else list(outputs)
        missing = [n for n in names if n not in result]
        if missing:
            raise ServingError("INVALID_ARGUMENT", f"outputs {missing} not in the reply "
                               f"(it has {sorted(result)})")
        return {n: from_json_value(result[n]) for n in names}

    def _http(self, method, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as err:
            text = err.read().decode("utf-8", "replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text or err.reason
            raise ServingError(_CODE_FOR_HTTP.get(err.code, "UNKNOWN"),
                               f"HTTP {err.code}: {message}") from None
        except urllib.error.URLError as err:
            raise ServingError("UNAVAILABLE", f"cannot reach {url}: {err.reason}") from None

    def model_status(self) -> dict:
        """REST ``GET /v1/models/NAME``: the version states the server reports.

        Returns:
          The decoded JSON reply.

        Raises:
          ServingError: the server refused the request or cannot be reached.
        """
        return self._http("GET", self._url())

    def predict(self, signature: str, inputs: dict, outputs=None) -> dict:
        """Run ``signature`` on the server (see `Predictor.predict`).

        Args:
          signature: the signature's name.
          inputs: input name -> numpy value, typed as the signature declares.
          outputs: the output names wanted (None: all the server returns).

        Returns:
          Output name -> numpy array (bytes outputs as object arrays).

        Raises:
          RequestError: an input cannot be encoded as a TensorProto (gRPC).
          ServingError: the server refused or failed the request, or cannot be reached.
        """
        if self.protocol == "grpc":
            return self._predict_grpc(signature, inputs, outputs)
        return self._predict_rest(signature, inputs, outputs)

    def close(self):
        """Close the gRPC channel, if one was opened (REST holds no connection)."""
        if self._stub is not None:
            self._channel.close()
            self._stub = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def to_json_value(value):
    """numpy -> TF Serving JSON: nested lists; bytes as ``{"b64": ...}``.

    Args:
      value: a numpy array or scalar; str, bytes and object arrays are base64-encoded.

    Returns:
      A JSON-serialisable value.
    """
    array = np.asarray(value)
    if array.dtype.kind in "SOU":
        def encode(item):
            raw = item.encode() if isinstance(item, str) else bytes(item)
            return {"b64": base64.b64encode(raw).decode("ascii")}
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.ndim \
            else encode(array.item())
    return array.tolist()


def from_json_value(value):
    """TF Serving JSON -> numpy; ``{"b64": ...}`` leaves become bytes (object array).

    Args:
      value: a decoded JSON value from a TF Serving reply.

    Returns:
      A numpy array (an object array of bytes when the leaves are ``{"b64": ...}``).

    Raises:
      ServingError: a JSON object other than ``{"b64": ...}`` inside the tensor.
    """
    def decode(item):
        if isinstance(item, dict):
            if set(item) != {"b64"}:
                raise ServingError("INTERNAL", f"unexpected JSON object in a tensor: {item}")
            return base64.b64decode(item["b64"])
        if isinstance(item, list):
            return [decode(x) for x in item]
        return item

    decoded = decode(value)
    if _has_bytes(decoded):
        out = np.empty(_nested_shape(decoded), dtype=object)
        _fill(out, decoded)
        return out
    return np.asarray(decoded)


def _has_bytes(item):
    while isinstance(item, list) and item:
        item = item[0]
    return isinstance(item, bytes)


def _nested_shape(item):
    shape = []
    while isinstance(item, list):
        shape.append(len(item))
        item = item[0] if item else None
    return tuple(shape)


def _fill(out, nested):
    for index in np.ndindex(out.shape):
        item = nested
        for i in index:
            item = item[i]
        out[index] = item


def write_samples(predictor: Predictor, num_samples: int, seed: int, output_dir: str,
                  nrow: int = 8, prefix: str = "sample", labels=None) -> dict:
    """Ask ``predictor`` for ``num_samples`` images of ``seed``; write each PNG and a grid.

    The individual files are the model's own PNG bytes (``png_bytes``), so what lands on
    disk is exactly what the server encodes; the grid is built from the uint8 images.

    Args:
      predictor: a `Predictor` (`PredictClient` or `LocalGenerator`).
      num_samples: how many images.
      seed: the seed naming the images.
      output_dir: where the files go (created when missing).
      nrow: images per row of the grid.
      prefix: the file names' prefix: ``<prefix>_<seed>_<i>.png`` and
        ``<prefix>_<seed>_grid.png``.
      labels: a conditional export's class of each image (-1: random); None otherwise.

    Returns:
      ``{"images": [paths], "grid": path}``.

    Raises:
      RequestError: ``num_samples`` is not a positive integer.
      errors.UserError: ``nrow`` is below 1.
      ServingError: the request was refused; the message names ``predictor.where``.
    """
    import os

    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
            or num_samples < 1:
        raise RequestError(f"--num_samples must be a positive integer, got {num_samples!r}")
    if nrow < 1:
        raise errors.UserError(f"--nrow must be >= 1, got {nrow}")
    try:
        out = predictor.generate_outputs(num_samples, seed, labels)
    except ServingError as err:
        raise ServingError(err.code, f"{predictor.where} refused the request: "
                                     f"{err.message}") from None
    os.makedirs(output_dir, exist_ok=True)
    width = max(4, len(str(num_samples - 1)))
    paths = []
    for i, data in enumerate(out[PNG]):
        path = os.path.join(output_dir, f"{prefix}_{seed}_{i:0{width}d}.png")
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    grid = save_png(os.path.join(output_dir, f"{prefix}_{seed}_grid.png"),
                    make_grid(out[IMAGES], nrow))
    return {"images": paths, "grid": grid}
