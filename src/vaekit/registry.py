"""Registries: one per component kind (architectures, likelihoods, objectives, metrics, loggers).

A component registers itself in its own file, in one call, with its name, what it can do, the
config section of its own options and the settings of a tiny instance for the contract tests::

    @ARCHITECTURES.register("conv", summary="strided convolutions", tiny={"model.channels": [4, 8]})
    class ConvVAE(VAE): ...

Everything that lists, checks or tests names reads the registry: config checks with "did you
mean", CLI listings (``vaekit components``), error messages and the contract matrix. Adding a
built-in component is one new file that registers itself, plus its tests.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vaekit.schema import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its factory, capabilities and the settings of a tiny instance."""

    name: str
    factory: T
    summary: str = ""
    capabilities: frozenset[str] = frozenset()
    tiny: dict[str, Any] = field(default_factory=dict)
    options: str = ""  # the config section of its own options (e.g. model.style), if it has one

    def has(self, capability: str) -> bool:
        return capability in self.capabilities


class Registry(Generic[T]):
    """Named components of one kind; ``key`` is the config key (or option) that names them."""

    def __init__(self, kind: str, key: str, *, capabilities: Iterable[str] = (), plugins: bool = False) -> None:
        self.kind, self.key, self.plugins = kind, key, plugins
        self.known_capabilities = frozenset(capabilities)
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        *,
        summary: str = "",
        capabilities: Iterable[str] = (),
        tiny: dict[str, Any] | None = None,
        options: str = "",
    ) -> Callable[[T], T]:
        """Decorator: register the class or function it decorates under ``name``."""

        def add(factory: T) -> T:
            self.add(name, factory, summary=summary, capabilities=capabilities, tiny=tiny, options=options)
            return factory

        return add

    def add(
        self,
        name: str,
        factory: T,
        *,
        summary: str = "",
        capabilities: Iterable[str] = (),
        tiny: dict[str, Any] | None = None,
        options: str = "",
    ) -> None:
        capabilities = set(capabilities or getattr(factory, "capabilities", ()))  # a class may declare its own
        unknown = capabilities - self.known_capabilities
        if unknown:
            raise ValueError(f"{self.kind} {name!r}: unknown capabilities {sorted(unknown)}")
        if name in self._entries and self._entries[name].factory is not factory:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, factory, summary, frozenset(capabilities), dict(tiny or {}), options)

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests that register a toy component clean up with this)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(list(self._entries.values()))

    def get(self, name: str) -> Entry[T]:
        """The entry of ``name``, or a ``ConfigError`` naming the key, the nearest name and the choices."""
        if name in self._entries:
            return self._entries[name]
        hint = difflib.get_close_matches(name, self.names(), n=1)
        raise ConfigError(
            f"{self.key}: unknown {self.kind} {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; use one of {', '.join(self.names())}"
            + (", or package.module:Name" if self.plugins else "")
        )

    def check(self, name: str) -> None:
        """``name`` is registered, or (where plug-ins are allowed) a ``package.module:Name``."""
        if not (self.plugins and ":" in name):
            self.get(name)
