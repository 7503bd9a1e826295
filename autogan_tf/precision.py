"""What ``--precision=auto`` computes in, and why.

bfloat16 pays only where the hardware computes it: GPUs from compute capability 8.0 on
(Ampere: A100, RTX 30xx; Ada, Hopper and later) have bfloat16 tensor cores, and CPUs with
the AVX512_BF16 or AMX-BF16 instructions (Intel Cooper Lake, Sapphire Rapids and later;
AMD Zen 4 and later) multiply bfloat16 natively. Everywhere else TensorFlow emulates it,
slower than float32. `choose` makes that decision from the device details alone, so it
can be tested with made-up devices, and says why in a sentence that the commands print at
start and the run keeps beside its configuration.

Variables, losses, spectral-norm sigma, batch-norm statistics, optimiser moments and the
EMA weights stay float32 whatever is chosen (`models.set_precision`).
"""

from __future__ import annotations

import dataclasses
import re

MIN_GPU_CAPABILITY = (8, 0)  # the first GPUs with bfloat16 tensor cores (Ampere)
CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")  # Linux /proc/cpuinfo flag names


@dataclasses.dataclass(frozen=True)
class Choice:
    """A concrete precision and the reason for it.

    Attributes:
      precision: ``"float32"`` or ``"bfloat16"``.
      reason: one sentence naming the device fact that decided, for the terminal and
        the run's ``config.json``.
    """

    precision: str
    reason: str


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags from Linux's ``cpuinfo``; empty where the file is missing.

    Args:
      cpuinfo: the file listing the CPU's flags.
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def gpu_details() -> list[dict]:
    """``tf.config.experimental.get_device_details`` of every visible GPU (``device_name``,
    ``compute_capability`` as a pair of ints where TensorFlow knows it).

    Listing devices does not start TensorFlow's runtime.
    """
    import tensorflow as tf

    return [dict(tf.config.experimental.get_device_details(gpu))
            for gpu in tf.config.list_physical_devices("GPU")]


def choose(requested: str, gpus: list[dict] | None = None,
           flags: set[str] | None = None) -> Choice:
    """The precision a run computes in.

    ``"float32"`` and ``"bfloat16"`` are kept as given. ``"auto"`` is bfloat16 when every
    GPU has compute capability `MIN_GPU_CAPABILITY` or later, or, with no GPU, when the
    CPU has one of `CPU_BFLOAT16_FLAGS`; float32 otherwise (a GPU whose capability
    TensorFlow does not report counts as an older one).

    Args:
      requested: ``"auto"``, ``"float32"`` or ``"bfloat16"`` (other values are returned
        as they are, for the setting's own check to reject).
      gpus: device details as `gpu_details` returns them; None reads this machine's.
      flags: CPU flags as `cpu_flags` returns them; None reads this machine's.

    Returns:
      The `Choice`.
    """
    if requested != "auto":
        return Choice(requested, f"--precision={requested}")
    gpus = gpu_details() if gpus is None else gpus
    if gpus:
        return _choose_for_gpus(gpus)
    flags = cpu_flags() if flags is None else flags
    native = sorted(set(CPU_BFLOAT16_FLAGS) & set(flags))
    if native:
        return Choice("bfloat16", f"auto: the CPU computes bfloat16 natively ({', '.join(native)})")
    return Choice("float32", "auto: the CPU has no bfloat16 units (avx512_bf16 or amx_bf16), "
                             "and emulated bfloat16 is slower than float32")


def _capability(value) -> tuple[int, ...]:
    """A compute capability as ints: ``(8, 0)`` from a pair, a list or ``"8.0"``; ``()``
    where it is missing or unreadable."""
    if isinstance(value, str):
        value = value.split(".")
    try:
        return tuple(int(part) for part in value or ())
    except (TypeError, ValueError):
        return ()


def _choose_for_gpus(gpus: list[dict]) -> Choice:
    """`choose`'s ``auto`` on a host with GPUs: bfloat16 only if every GPU has it."""
    described = []
    for gpu in gpus:
        name = gpu.get("device_name") or "GPU"
        capability = _capability(gpu.get("compute_capability"))
        if not capability:
            return Choice("float32", f"auto: TensorFlow does not report the compute capability "
                                     f"of {name}, so its bfloat16 units are not assumed")
        shown = ".".join(map(str, capability))
        if capability < MIN_GPU_CAPABILITY:
            return Choice("float32", f"auto: {name} has compute capability {shown}, below "
                                     "8.0: no bfloat16 tensor cores")
        described.append(f"{name} {shown}")
    return Choice("bfloat16", "auto: bfloat16 tensor cores on every GPU (compute capability "
                              f"{', '.join(described)})")
