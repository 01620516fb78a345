"""`hf-finetune recipes`, `strategies`, `tasks`: what ships."""

from __future__ import annotations

from hf_finetune.errors import EXIT_OK
from hf_finetune.recipes import list_recipes
from hf_finetune.strategies import STRATEGIES
from hf_finetune.tasks import TASKS


def recipes_main(argv: list[str]) -> int:
    recipes = list_recipes()
    width = max(map(len, recipes), default=0) + 2
    for name, path in recipes.items():
        first = next((line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
        print(f"{name:<{width}} {first}")
    return EXIT_OK


def print_registry(registry) -> int:
    for name, cls in registry.all().items():
        print(f"{name:<20} {cls.summary}")
    return EXIT_OK


def strategies_main(argv: list[str]) -> int:
    return print_registry(STRATEGIES)


def tasks_main(argv: list[str]) -> int:
    return print_registry(TASKS)
