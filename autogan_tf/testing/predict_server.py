"""A stand-in for TF Serving's Predict API, on loopback only, for tests and demos.

The TensorFlow Serving binary cannot be installed everywhere (no Docker, no
apt repository here), yet the client code and ``autogan-sample`` must be
tested over real sockets. This server loads one exported SavedModel and speaks
the two protocols the way TF Serving does:

* gRPC ``tensorflow.serving.PredictionService``: ``Predict`` (with
  ``output_filter``) and ``GetModelMetadata`` (signature_def); other methods
  answer UNIMPLEMENTED.
* REST: ``POST /v1/models/NAME[/versions/N]:predict`` (columnar ``inputs`` or
  row ``instances``; string outputs named ``*_bytes`` as ``{"b64": ...}``),
  ``GET /v1/models/NAME[/versions/N]`` (status) and ``.../metadata``.

Errors carry TF Serving's status codes (gRPC codes; HTTP 400/404/412... with
``{"error": "..."}``); a bad request never stops the server. Use::

    with PredictServer("models/autogan") as server:
        PredictClient(server.grpc_address, "grpc").generate(4, seed=0)

or ``python -m autogan_tf.testing.predict_server --saved_model=DIR
--grpc_port=8500 --rest_port=8501`` (port 0 picks a free port, -1 disables).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from autogan_tf.serving.client import HTTP_STATUS, LocalGenerator, ServingError, to_json_value
from autogan_tf.serving.export import SERVING_DEFAULT, latest_version_dir

_MAX_BODY = 64 * 1024 * 1024
_REST_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                        r"(?P<rest>/metadata|:predict)?$")


def _check_loopback(host: str) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"--host must be a loopback address (127.0.0.1, ::1), got {host!r}")
    return host


# ---------------------------------------------------------------------------
# JSON <-> numpy with TF Serving's typing rules (the signature decides the dtype)
# ---------------------------------------------------------------------------

def json_to_array(value, dtype, name: str) -> np.ndarray:
    """Parse one JSON tensor for input ``name`` of numpy ``dtype``; INVALID_ARGUMENT if it does not fit."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    flat = []
    _flatten(value, shape, 0, flat, name)
    dtype = np.dtype(dtype)
    parsed = [_leaf(item, dtype, name) for item in flat]
    if dtype.kind in "SO":
        out = np.empty(len(parsed), dtype=object)
        out[:] = parsed
        return out.reshape(shape)
    return np.array(parsed, dtype=dtype).reshape(shape)


def _flatten(value, shape, level, out, name):
    if isinstance(value, list):
        if level >= len(shape) or len(value) != shape[level]:
            raise ServingError("INVALID_ARGUMENT",
                               f"input {name}: ragged JSON list at level {level}")
        for item in value:
            _flatten(item, shape, level + 1, out, name)
    elif level != len(shape):
        raise ServingError("INVALID_ARGUMENT",
                           f"input {name}: value {value!r} at the wrong nesting level")
    else:
        out.append(value)


def _leaf(item, dtype, name):
    bad = ServingError("INVALID_ARGUMENT",
                       f"input {name}: JSON value {json.dumps(item)[:60]} is not of expected "
                       f"type {dtype.name if dtype.kind not in 'SO' else 'string'}")
    if dtype.kind in "iu":
        if isinstance(item, bool) or not isinstance(item, int):
            raise bad
        info = np.iinfo(dtype)
        if not info.min <= item <= info.max:
            raise ServingError("INVALID_ARGUMENT",
                               f"input {name}: {item} does not fit in {dtype.name}")
        return item
    if dtype.kind == "f":
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise bad
        return item
    if dtype.kind == "b":
        if not isinstance(item, bool):
            raise bad
        return item
    if dtype.kind in "SO":
        if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
            import base64
            import binascii
            try:
                return base64.b64decode(item["b64"], validate=True)
            except binascii.Error:
                raise ServingError("INVALID_ARGUMENT", f"input {name}: bad base64") from None
        if isinstance(item, str):
            return item.encode()
        raise bad
    raise ServingError("UNIMPLEMENTED", f"input {name}: dtype {dtype} is not supported")


def outputs_to_json(outputs: dict, row_format: bool):
    """TF Serving's reply shapes: one output loses its name; ``*_bytes`` strings go base64."""
    def encode(name, value):
        value = np.asarray(value)
        if value.dtype.kind in "SO" and not name.endswith("_bytes"):
            return np.vectorize(lambda b: b.decode("utf-8", "replace"),
                                otypes=[object])(value).tolist()
        return to_json_value(value)

    encoded = {name: encode(name, value) for name, value in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}
    sizes = {len(v) if isinstance(v, list) else None for v in encoded.values()}
    if len(sizes) != 1 or None in sizes:
        raise ServingError("INVALID_ARGUMENT", "outputs have no common batch dimension; "
                           "use the columnar 'inputs' request format")
    rows = sizes.pop()
    if len(encoded) == 1:
        return {"predictions": next(iter(encoded.values()))}
    return {"predictions": [{k: v[i] for k, v in encoded.items()} for i in range(rows)]}


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------

class PredictServer:
    """One SavedModel behind a gRPC and a REST port on loopback; a context manager."""

    def __init__(self, saved_model: str, model_name: str = "autogan", grpc_port: int = 0,
                 rest_port: int = 0, host: str = "127.0.0.1", verbose: bool = False):
        self.host = _check_loopback(host)
        self.path = latest_version_dir(saved_model)
        base = os.path.basename(os.path.normpath(self.path))
        self.version = int(base) if base.isdigit() else 1
        self.model_name = model_name
        self.model = LocalGenerator(self.path)
        self.verbose = verbose
        self._grpc_port_wanted = grpc_port
        self._rest_port_wanted = rest_port
        self._grpc_server = None
        self._http_server = None
        self._http_thread = None
        self.grpc_port = None
        self.rest_port = None
        self.requests = 0
        self.errors = 0
        self._lock = threading.Lock()

    # -- addresses ----------------------------------------------------------
    def _address(self, port):
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    @property
    def grpc_address(self) -> str:
        return self._address(self.grpc_port)

    @property
    def rest_address(self) -> str:
        return self._address(self.rest_port)

    # -- shared request logic -----------------------------------------------
    def _count(self, error: bool):
        with self._lock:
            self.requests += 1
            self.errors += int(error)

    def check_model(self, name: str, version: int | None):
        if name != self.model_name:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
        if version is not None and version != self.version:
            raise ServingError("NOT_FOUND",
                               f"Servable not found for request: Specific({name}, {version})")

    def signature_def_map(self):
        """The SavedModel's SignatureDefs as TF Serving's ``SignatureDefMap`` proto."""
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow_serving.apis import get_model_metadata_pb2

        saved = saved_model_pb2.SavedModel()
        with open(os.path.join(self.path, "saved_model.pb"), "rb") as f:
            saved.ParseFromString(f.read())
        out = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in saved.meta_graphs[0].signature_def.items():
            if not key.startswith("__"):
                out.signature_def[key].CopyFrom(sig)
        return out

    def status_json(self):
        return {"model_version_status": [{
            "version": str(self.version), "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}

    # -- lifecycle ----------------------------------------------------------
    def start(self):
        if self._grpc_port_wanted is not None and self._grpc_port_wanted >= 0:
            self._start_grpc(self._grpc_port_wanted)
        if self._rest_port_wanted is not None and self._rest_port_wanted >= 0:
            self._start_rest(self._rest_port_wanted)
        return self

    def _start_grpc(self, port):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
            ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _grpc_servicer(self), server)
        bound = server.add_insecure_port(self._address(port))
        if bound == 0:
            raise OSError(f"cannot bind gRPC to {self._address(port)}")
        server.start()
        self._grpc_server, self.grpc_port = server, bound

    def _start_rest(self, port):
        owner = self

        class Handler(_RestHandler):
            server_owner = owner

        server_class = _HTTPServer6 if ":" in self.host else ThreadingHTTPServer
        httpd = server_class((self.host, port), Handler)
        httpd.daemon_threads = True
        self._http_server, self.rest_port = httpd, httpd.server_address[1]
        self._http_thread = threading.Thread(target=httpd.serve_forever, name="predict-rest",
                                             kwargs={"poll_interval": 0.1}, daemon=True)
        self._http_thread.start()

    def stop(self):
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=1).wait()
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_thread.join(timeout=5)
            self._http_server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _grpc_servicer(owner: PredictServer):
    """Build the servicer lazily so importing this module does not need grpc."""
    import grpc
    import tensorflow as tf
    from google.protobuf import any_pb2
    from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,
                                         prediction_service_pb2_grpc)

    def abort(context, err: ServingError):
        owner._count(error=True)
        context.abort(getattr(grpc.StatusCode, err.code, grpc.StatusCode.UNKNOWN), err.message)

    def requested_version(spec):
        return spec.version.value if spec.HasField("version") else None

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            try:
                response = self._predict(request)
            except ServingError as err:
                abort(context, err)
            except Exception as err:  # never let one request take the server down
                abort(context, ServingError("INTERNAL", f"{type(err).__name__}: {err}"))
            owner._count(error=False)
            return response

        def _predict(self, request):
            spec = request.model_spec
            owner.check_model(spec.name, requested_version(spec))
            signature = spec.signature_name or SERVING_DEFAULT
            inputs = {}
            for name, proto in request.inputs.items():
                try:
                    inputs[name] = tf.make_ndarray(proto)
                except (ValueError, TypeError) as err:
                    raise ServingError("INVALID_ARGUMENT", f"input {name}: {err}") from None
            outputs = owner.model.predict(signature, inputs,
                                          list(request.output_filter) or None)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = owner.model_name
            response.model_spec.signature_name = signature
            response.model_spec.version.value = owner.version
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response

        def GetModelMetadata(self, request, context):
            try:
                owner.check_model(request.model_spec.name,
                                  requested_version(request.model_spec))
                if list(request.metadata_field) != ["signature_def"]:
                    raise ServingError("INVALID_ARGUMENT",
                                       "metadata_field must be exactly ['signature_def']")
            except ServingError as err:
                abort(context, err)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = owner.model_name
            response.model_spec.version.value = owner.version
            packed = any_pb2.Any()
            packed.Pack(owner.signature_def_map())
            response.metadata["signature_def"].CopyFrom(packed)
            owner._count(error=False)
            return response

    return Servicer()


class _HTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _RestHandler(BaseHTTPRequestHandler):
    server_owner: PredictServer = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server_owner.verbose:
            sys.stderr.write("predict_server: " + fmt % args + "\n")

    def _reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, err: ServingError):
        self.server_owner._count(error=True)
        self._reply(HTTP_STATUS.get(err.code, 500), {"error": err.message})

    def _route(self, method):
        match = _REST_PATH.match(self.path)
        verb = match and match.group("rest")
        if not match or (method == "POST") != (verb == ":predict"):
            raise ServingError("INVALID_ARGUMENT", f"Malformed request: {method} {self.path}")
        version = match.group("version")
        self.server_owner.check_model(match.group("name"), int(version) if version else None)
        return verb

    def do_GET(self):
        try:
            verb = self._route("GET")
            owner = self.server_owner
            if verb == "/metadata":
                from google.protobuf import json_format
                body = {"model_spec": {"name": owner.model_name, "signature_name": "",
                                       "version": str(owner.version)},
                        "metadata": {"signature_def": json_format.MessageToDict(
                            owner.signature_def_map(), preserving_proto_field_name=True)}}
            else:
                body = owner.status_json()
        except ServingError as err:
            return self._fail(err)
        self.server_owner._count(error=False)
        self._reply(200, body)

    def do_POST(self):
        try:
            self._route("POST")
            body = self._read_json()
            self._reply(200, self._predict(body))
        except ServingError as err:
            return self._fail(err)
        except Exception as err:  # never let one request take the server down
            return self._fail(ServingError("INTERNAL", f"{type(err).__name__}: {err}"))
        self.server_owner._count(error=False)

    def _read_json(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= _MAX_BODY:
            # Drain nothing: the connection is closed after this reply.
            self.close_connection = True
            raise ServingError("INVALID_ARGUMENT",
                               f"request body must be 1..{_MAX_BODY} bytes of JSON")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError as err:
            raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {err}") from None
        if not isinstance(body, dict):
            raise ServingError("INVALID_ARGUMENT", "the request body must be a JSON object")
        return body

    def _predict(self, body):
        model = self.server_owner.model
        signature = body.get("signature_name", SERVING_DEFAULT)
        if not isinstance(signature, str):
            raise ServingError("INVALID_ARGUMENT", "'signature_name' key must be a string value")
        specs = model.input_specs(signature)
        if ("inputs" in body) == ("instances" in body):
            raise ServingError("INVALID_ARGUMENT",
                               "Missing 'inputs' or 'instances' key" if "inputs" not in body
                               else "expecting only one of 'inputs' or 'instances' keys")
        row_format = "instances" in body
        named = _columns(body["instances"], specs) if row_format else body["inputs"]
        if not isinstance(named, dict):
            if len(specs) != 1:
                raise ServingError("INVALID_ARGUMENT",
                                   f"signature {signature} takes named inputs {sorted(specs)}")
            named = {next(iter(specs)): named}
        unknown = sorted(set(named) - set(specs))
        if unknown:
            raise ServingError("INVALID_ARGUMENT",
                               f"JSON object: does not have named input: {unknown[0]}")
        inputs = {name: json_to_array(value, specs[name].dtype.as_numpy_dtype, name)
                  for name, value in named.items()}
        return outputs_to_json(model.predict(signature, inputs), row_format)


def _columns(instances, specs):
    """Row format -> columns: a list of per-example objects (or bare values for one input)."""
    if not isinstance(instances, list) or not instances:
        raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
    if all(isinstance(row, dict) for row in instances):
        keys = set(instances[0])
        if any(set(row) != keys for row in instances):
            raise ServingError("INVALID_ARGUMENT", "every instance must have the same keys")
        return {key: [row[key] for row in instances] for key in keys}
    return instances


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m autogan_tf.testing.predict_server",
        description="Serve an exported generator with TF Serving's Predict API on loopback.")
    parser.add_argument("--saved_model", required=True,
                        help="export base dir (newest version served) or a version dir")
    parser.add_argument("--model_name", default="autogan")
    parser.add_argument("--grpc_port", type=int, default=8500, help="0: any free port, -1: off")
    parser.add_argument("--rest_port", type=int, default=8501, help="0: any free port, -1: off")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--verbose", action="store_true", help="log every REST request")
    args = parser.parse_args(argv)
    try:
        server = PredictServer(args.saved_model, args.model_name, args.grpc_port,
                               args.rest_port, args.host, args.verbose)
    except ValueError as err:
        parser.error(str(err))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        parts = [f"model {server.model_name} version {server.version} from {server.path}"]
        if server.grpc_port:
            parts.append(f"grpc={server.grpc_address}")
        if server.rest_port:
            parts.append(f"rest={server.rest_address}")
        print("serving " + " ".join(parts), flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
