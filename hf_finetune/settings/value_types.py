"""A recipe's values against the types of the fields they set, before they reach a dataclass.

Command-line values are strings that argparse converts (and refuses) by each field's type. Recipe
values are YAML: numbers, booleans, lists, mappings, null. argparse converts only string defaults,
so `learning_rate: [1, 2]` or `max_seq_length: {}` used to pass untouched into the config and fail
later as a traceback deep in training or tokenisation (found by the fuzzed-recipe tests). Here such
a value is one line naming the key, the expected type and what was given; strings are left to
argparse, and types this check does not know are let through rather than guessed.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from typing import Any

from hf_finetune.errors import UserError


@functools.cache
def field_types(classes: tuple[type, ...]) -> dict[str, Any]:
    """Field name -> its resolved type hint, over every dataclass of the config."""
    hints = {}
    for cls in classes:
        resolved = typing.get_type_hints(cls)
        hints.update({f.name: resolved.get(f.name, Any) for f in dataclasses.fields(cls) if f.init})
    return hints


def fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value can stand for a field of type `hint` (a string always can: argparse checks it)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if value is None:
        return hint is type(None) or hint is Any
    if isinstance(value, str) or hint is Any:
        return True
    if origin in (list, tuple) or hint in (list, tuple):
        return isinstance(value, list) and (not args or all(fits(v, args[0]) for v in value))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)  # `seed_name: 42` reads as text
    return not isinstance(value, (list, dict))  # a type this check does not know: only shapes are refused


def describe(hint: Any) -> str:
    names = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    words = [getattr(n, "__name__", str(n)).replace("NoneType", "null") for n in names]
    optional = " or null" if type(None) in typing.get_args(hint) else ""
    return " or ".join(dict.fromkeys(words)) + optional


def check_value_types(values: dict[str, Any], classes: tuple[type, ...], where: str) -> dict[str, Any]:
    """Refuse values of the wrong type; numbers given for text fields become text. Returns the values."""
    hints = field_types(classes)
    checked = dict(values)
    for key, value in values.items():
        hint = hints.get(key, Any)
        if not fits(value, hint):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise UserError(f"{key} in {where} must be {describe(hint)}, got {type(value).__name__} {shown}")
        if hint is str and isinstance(value, (int, float)):
            checked[key] = str(value)
    return checked
