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


def _builtin_engine() -> SqlGenerator:
    # Imported on first use: the engine loads word lists and is not needed by every process.
    module = importlib.import_module(_BUILTIN_MODULE)
    generator: SqlGenerator = module.BuiltinGenerator()
    return generator


def _builtin(_settings: Settings) -> SqlGenerator:
    return _builtin_engine()


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


_SETTINGS_FREE: dict[str, Callable[[], SqlGenerator]] = {DEFAULT_GENERATOR: _builtin_engine}
"""Generators built without settings (they read none), by name: what `settings_free_generator`
can build where no platform settings are loaded."""


def register_generator(name: str, factory: GeneratorFactory) -> None:
    _FACTORIES[name] = factory
    _SETTINGS_FREE.pop(name, None)


def unregister_generator(name: str) -> None:
    _FACTORIES.pop(name, None)
    _SETTINGS_FREE.pop(name, None)


def restore_builtin() -> None:
    """Register the offline engine under its own name again (after a test replaced it)."""
    _FACTORIES[DEFAULT_GENERATOR] = _builtin
    _SETTINGS_FREE[DEFAULT_GENERATOR] = _builtin_engine


def settings_free_generator(name: str) -> SqlGenerator | None:
    """The generator of that name if it is built without settings, else None (build it with
    `get_generator` and real settings)."""
    build = _SETTINGS_FREE.get(name)
    return None if build is None else build()


def generator_names() -> list[str]:
    return sorted(_FACTORIES)


def get_generator(name: str, settings: Settings) -> SqlGenerator:
    """A generator instance; `UnknownGenerator` (422) for a name nobody registered."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise UnknownGenerator(details={"generator": name, "available": generator_names()})
    return factory(settings)
