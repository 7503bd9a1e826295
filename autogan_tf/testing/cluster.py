"""A multi-worker cluster on this machine's loopback, for tests and benchmarks."""

from __future__ import annotations

import json
import socket


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports on localhost that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_tf_configs(num_workers: int) -> list[str]:
    """One ``TF_CONFIG`` value per worker of a cluster on localhost ports (worker 0 is the
    chief)."""
    hosts = [f"localhost:{port}" for port in free_ports(num_workers)]
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
            for i in range(num_workers)]
