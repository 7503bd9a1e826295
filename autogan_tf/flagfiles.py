"""The flagfiles shipped with the package: the paper's experiments and the quick runs.

They live in ``flags/`` at the top of a checkout and install as the package
``autogan_tf.flags``, so ``--flagfile=search_cifar10`` works after a plain
``pip install`` as well as from a checkout (the command lines resolve names
with `resolve`). The quick start reads its settings from the same files
(`read`), so they are written down once.
"""

from __future__ import annotations

import dataclasses
import os
import typing


def shipped() -> dict:
    """Name (``search_cifar10``) -> path of every shipped flagfile."""
    from importlib import resources

    try:
        folder = resources.files("autogan_tf.flags")
    except ModuleNotFoundError:
        return {}
    return {entry.name[:-4]: str(entry) for entry in folder.iterdir()
            if entry.name.endswith(".cfg")}


def resolve(value: str) -> str | None:
    """The path a ``--flagfile`` value means: itself if that file exists, else the shipped
    flagfile its base name (with or without ``.cfg``) names; None if neither.

    Args:
      value: a ``--flagfile`` value: a path, or a shipped flagfile's name.
    """
    if os.path.exists(value):
        return value
    name = os.path.basename(value)
    name = name[:-4] if name.endswith(".cfg") else name
    return shipped().get(name)


def read(name: str, config_class) -> dict:
    """The ``--key=value`` lines of a shipped flagfile as keyword arguments of ``config_class``.

    Args:
      name: a shipped flagfile's name, e.g. ``"search_quick"``.
      config_class: the dataclass the flags belong to (`search.SearchConfig`, ...): values
        are converted to its fields' types; a key it does not have is an error, so a
        flagfile cannot drift away from the configuration it sets.

    Returns:
      Field name -> value, typed as the field; a bare ``--noKEY`` line sets a bool field to
      False.

    Raises:
      FileNotFoundError: no shipped flagfile has that name.
      ValueError: a line's key is not a field of ``config_class``, or its value cannot be
        converted.
    """
    path = shipped().get(name)
    if path is None:
        raise FileNotFoundError(f"no shipped flagfile {name!r} ({', '.join(sorted(shipped()))})")
    hints = typing.get_type_hints(config_class)
    fields = {f.name for f in dataclasses.fields(config_class)}
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, text = line.lstrip("-").partition("=")
            if not sep and key.startswith("no") and key[2:] in fields:
                key, text = key[2:], "false"
            if key not in fields:
                raise ValueError(f"{path}: --{key} is not a field of {config_class.__name__}")
            values[key] = _convert(text, hints[key])
    return values


def _convert(text: str, hint):
    if hint is bool:
        return text.lower() in ("", "true", "1", "yes")
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    return text
