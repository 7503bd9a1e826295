"""Flag helpers shared by the autogan-* command lines."""

import dataclasses
import typing

from absl import flags


def define_dataclass_flags(cls, helps, skip=()):
    """One absl flag per dataclass field, typed from its default; help text from ``helps``."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        default = field.default
        help_text = helps.get(field.name, field.name.replace("_", " "))
        hint = hints[field.name]
        if hint is bool:
            flags.DEFINE_bool(field.name, default, help_text)
        elif hint is int:
            flags.DEFINE_integer(field.name, default, help_text)
        elif hint is float:
            flags.DEFINE_float(field.name, default, help_text)
        else:
            flags.DEFINE_string(field.name, default, help_text)


def dataclass_from_flags(cls, values, **overrides):
    kwargs = {f.name: getattr(values, f.name) for f in dataclasses.fields(cls)
              if f.name in values}
    kwargs.update(overrides)
    return cls(**kwargs)



def resolve_classifier(classifier, dataset, model_dir, data_dir=None):
    """'auto' becomes a small classifier trained on ``dataset`` once, cached in model_dir."""
    import os

    if classifier != "auto":
        return classifier
    from autogan_tf import pipeline

    return pipeline.train_small_classifier(dataset, os.path.join(model_dir, "classifier.keras"),
                                           data_dir=data_dir)
