"""The keys a manifest table accepts, for did-you-mean suggestions (generator.steps.core.steplib)."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel

from generator.manifest.model import Manifest


def allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model accepts at a table path, e.g. ('services', 'auth') -> Service's fields."""
    model: type[BaseModel] | None = Manifest
    pending_dict = False
    for part in loc:
        if model is None:
            return []
        if pending_dict:
            pending_dict = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model, pending_dict = _inner_model(field.annotation)
    if model is None or pending_dict:
        return []
    return list(model.model_fields)


def _inner_model(annotation: object) -> tuple[type[BaseModel] | None, bool]:
    """(model, is dict of models) for an annotation: Health, Health | None, dict[str, Service]."""
    origin = typing.get_origin(annotation)
    if origin is dict:
        value = typing.get_args(annotation)[1]
        return (value, True) if isinstance(value, type) and issubclass(value, BaseModel) else (None, False)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg, False
        return None, False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False
