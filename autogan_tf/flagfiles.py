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
      config_class: the dataclass the flags belong to (`config.SearchConfig`, ...): values
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
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                try:
                    key, value = _parse_setting(line.lstrip("-"), config_class)
                except ValueError as e:
                    raise ValueError(f"{path}: {e}") from None
                values[key] = value
    return values


def parse_settings(items, config_class, flag: str, reserved=()) -> dict:
    """``KEY=VALUE`` texts (a command's repeatable setting flag) as keyword arguments.

    The quick start takes its settings from the shipped flagfiles; these texts replace some
    of them (``autogan-quickstart --search_setting=reward_bn=batch``), typed and checked as
    `read` types and checks a flagfile's lines.

    Args:
      items: the flag's values, e.g. ``["reward_bn=batch", "shared_iters=80"]``.
      config_class: the dataclass the settings belong to.
      flag: the flag's name as typed (``"--search_setting"``), for error messages.
      reserved: fields the command sets itself, which may not be replaced.

    Returns:
      Field name -> typed value; a later item for the same key wins. As in a flagfile, a
      bare ``KEY`` sets a bool field to True and ``noKEY`` to False.

    Raises:
      errors.UserError: a key that is not a field or is reserved, a value that cannot be
        converted, a non-bool key without ``=VALUE``; the message names ``flag``.
    """
    from autogan_tf import errors

    values = {}
    for item in items:
        try:
            key, value = _parse_setting(item.lstrip("-"), config_class)
        except ValueError as e:
            raise errors.UserError(f"{flag}={item}: {e}") from None
        if key in reserved:
            raise errors.UserError(f"{flag}={item}: {key} is set by the command itself "
                                   f"(not replaceable: {', '.join(reserved)})")
        values[key] = value
    return values


def _parse_setting(text: str, config_class):
    """``(field, typed value)`` of one ``KEY=VALUE`` (or, for a bool, bare ``KEY`` or
    ``noKEY``) text.

    Raises:
      ValueError: ``KEY`` is not a field of ``config_class``, has no value and is not a
        bool, or its value does not convert.
    """
    hints = typing.get_type_hints(config_class)
    key, sep, text = text.partition("=")
    if not sep and key.startswith("no") and hints.get(key[2:]) is bool:
        key, text = key[2:], "false"
    if key not in {f.name for f in dataclasses.fields(config_class)}:
        raise ValueError(f"--{key} is not a field of {config_class.__name__}")
    if not sep and hints[key] is not bool:
        raise ValueError(f"expected KEY=VALUE, not a bare {key}")
    try:
        return key, _convert(text, hints[key])
    except ValueError:
        kind = getattr(hints[key], "__name__", str(hints[key]))
        raise ValueError(f"--{key} expects {kind}, got {text!r}") from None


def _convert(text: str, hint):
    if hint is bool:
        if text.lower() not in ("", "true", "1", "yes", "false", "0", "no"):
            raise ValueError(f"not true or false: {text!r}")
        return text.lower() in ("", "true", "1", "yes")
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    return text
