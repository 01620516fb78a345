"""Name -> class tables filled by decorators where each member is defined.

A new strategy or task is one new file plus one decorator line; listing its folder
is the catalogue. A duplicate name is a bug and raises at import.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

from hf_finetune.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self._members: dict[str, type[T]] = {}
        self._imported = False

    def register(self, cls: type[T]) -> type[T]:
        if cls.name in self._members:
            raise ValueError(f"{self.kind} '{cls.name}' is registered twice")
        self._members[cls.name] = cls
        return cls

    def _import_all(self) -> None:
        if not self._imported:
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self.package}.{module.name}")
            self._imported = True

    def all(self) -> dict[str, type[T]]:
        self._import_all()
        return dict(sorted(self._members.items()))

    def get(self, name: str) -> type[T]:
        members = self.all()
        if name not in members:
            raise UserError(f"unknown {self.kind} '{name}'; available: {', '.join(members)}")
        return members[name]
