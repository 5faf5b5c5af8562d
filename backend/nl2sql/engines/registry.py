"""Generators by name: `builtin` (the offline engine) and whatever else is registered."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from backend.core.config import Settings
from backend.nl2sql.engines.base import SqlGenerator
from backend.nl2sql.errors import UnknownGenerator

GeneratorFactory = Callable[[Settings], SqlGenerator]

DEFAULT_GENERATOR = "builtin"
_BUILTIN_MODULE = "backend.nl2sql.engines.builtin"


def _builtin(_settings: Settings) -> SqlGenerator:
    # Imported on first use: the engine loads word lists and is not needed by every process.
    module = importlib.import_module(_BUILTIN_MODULE)
    generator: SqlGenerator = module.BuiltinGenerator()
    return generator


def _llm(name: str) -> GeneratorFactory:
    def build(settings: Settings) -> SqlGenerator:
        # Imported on use: the LLM generators import httpx, which the builtin path never needs.
        from backend.nl2sql.engines.llm import build_llm_generator

        return build_llm_generator(name, settings)

    return build


_FACTORIES: dict[str, GeneratorFactory] = {
    DEFAULT_GENERATOR: _builtin,
    "openai": _llm("openai"),
    "anthropic": _llm("anthropic"),
}


def register_generator(name: str, factory: GeneratorFactory) -> None:
    _FACTORIES[name] = factory


def unregister_generator(name: str) -> None:
    _FACTORIES.pop(name, None)


def generator_names() -> list[str]:
    return sorted(_FACTORIES)


def get_generator(name: str, settings: Settings) -> SqlGenerator:
    """A generator instance; `UnknownGenerator` (422) for a name nobody registered."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise UnknownGenerator(details={"generator": name, "available": generator_names()})
    return factory(settings)
