"""Registries: one per component kind, and the catalogue of every kind.

A component registers itself in its own file, in one call, with its name, a summary, what it can do,
its options (a dataclass defined beside its code) and the settings of a tiny instance::

    @dataclass(frozen=True)
    class StyleConfig: ...

    @ARCHITECTURES.register("style", summary="...", options=StyleConfig, tiny={"model.style.style_dim": 8})
    class StyleVAE(VAE): ...

Its options then live in the config under the kind's section (``model.style``): the config schema,
"did you mean", ``--help`` choices, ``vaekit components``, the README's tables and the contract tests
all read the registries. Built-in components are found by ``discover()``, which imports every module
of vaekit's component packages, so a new one is one new file and no edit; third-party ones come
through the ``vaekit.components`` entry-point group, ``--plugin MODULE`` or ``VAEKIT_PLUGINS``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import pkgutil
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vaekit.schema import ConfigError

T = TypeVar("T")

# Where vaekit's own components live: every module under these packages is imported by discover()
BUILT_IN_PACKAGES = (
    "vaekit.data",
    "vaekit.likelihoods",
    "vaekit.models",
    "vaekit.engine",
    "vaekit.objectives",
    "vaekit.evaluation",
    "vaekit.training",
)
ENTRY_POINT_GROUP = "vaekit.components"  # installed packages name modules that register components
PLUGINS_VARIABLE = "VAEKIT_PLUGINS"  # comma-separated modules to import, as --plugin does


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its factory, capabilities, options and the settings of a tiny instance."""

    name: str
    factory: T
    summary: str = ""
    capabilities: frozenset[str] = frozenset()
    tiny: dict[str, Any] = field(default_factory=dict)
    options: type | None = None  # the dataclass of its own options, if it has any
    options_key: str = ""  # where they live in the config (e.g. model.style)
    declares: dict[str, Any] = field(default_factory=dict)  # what its kind asks of it (a term's objectives)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities


class Registry(Generic[T]):
    """Named components of one kind; ``key`` is the config key (or option) that names them and
    ``section`` the config section their options live in (``model``: ``model.<name>.*``)."""

    def __init__(
        self,
        kind: str,
        key: str,
        *,
        capabilities: Iterable[str] = (),
        plugins: bool = False,
        section: str = "",
        declares: Iterable[str] = (),
        listed: bool = True,
    ) -> None:
        """``listed``: the registry joins the catalogue (``kinds()``: listings, schema, contract tests)."""
        self.kind, self.key, self.plugins, self.section = kind, key, plugins, section
        self.known_capabilities = frozenset(capabilities)
        self.declarations = frozenset(declares)  # the keyword arguments an entry of this kind may give
        self._entries: dict[str, Entry[T]] = {}
        if listed:
            if kind in _CATALOGUE:
                raise ValueError(f"a registry of {kind}s exists already")
            _CATALOGUE[kind] = self

    def register(self, name: str, **details: Any) -> Callable[[T], T]:
        """Decorator: register the class or function it decorates under ``name`` (see ``add``)."""

        def add(factory: T) -> T:
            self.add(name, factory, **details)
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
        options: type | None = None,
        section: str | None = None,
        **declares: Any,
    ) -> None:
        """Register ``factory`` as ``name``. ``options``: its options dataclass, kept in the config at
        ``<kind's section>.<section>`` (``section`` defaults to the name with ``_`` for ``-``)."""
        capabilities = set(capabilities or getattr(factory, "capabilities", ()))  # a class may declare its own
        unknown = capabilities - self.known_capabilities
        if unknown:
            raise ValueError(f"{self.kind} {name!r}: unknown capabilities {sorted(unknown)}")
        undeclared = set(declares) - self.declarations
        if undeclared:
            raise TypeError(f"{self.kind} {name!r}: unknown declarations {sorted(undeclared)}")
        if name in self._entries and self._entries[name].factory is not factory:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        key = ""
        if options is not None:
            if not (dataclasses.is_dataclass(options) and options.__dataclass_params__.frozen):
                raise TypeError(f"{self.kind} {name!r}: options must be a frozen dataclass")
            if not self.section:
                raise TypeError(f"{self.kind}s keep no options in the config")
            key = f"{self.section}.{section or name.replace('-', '_')}"
        entry = Entry(name, factory, summary, frozenset(capabilities), dict(tiny or {}), options, key, declares)
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests that register a component of their own clean up with this)."""
        self._entries.pop(name, None)

    # Every read finds the components first (discover(): once per process), so that no module has
    # to import the built-in ones by hand before asking for one.
    def names(self) -> list[str]:
        discover()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        discover()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        discover()
        return iter(list(self._entries.values()))

    def get(self, name: str, key: str | None = None) -> Entry[T]:
        """The entry of ``name``, or a ``ConfigError`` naming the key, the nearest name and the choices."""
        discover()
        if name in self._entries:
            return self._entries[name]
        hint = difflib.get_close_matches(str(name), self.names(), n=1)
        raise ConfigError(
            f"{key or self.key}: unknown {self.kind} {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; use one of {', '.join(self.names())}"
            + (", or package.module:Name" if self.plugins else "")
        )

    def check(self, name: str, key: str | None = None) -> None:
        """``name`` is registered, or (where plug-ins are allowed) a ``package.module:Name``."""
        if not (self.plugins and ":" in name):
            self.get(name, key)


_CATALOGUE: dict[str, Registry] = {}
_discovered = False


def discover() -> None:
    """Import every module of vaekit's component packages (each registers what it defines), then
    the modules of the ``vaekit.components`` entry points and of ``$VAEKIT_PLUGINS``. Once per process."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for package in BUILT_IN_PACKAGES:
        _import_whole(package)
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()
        except Exception as err:  # a broken third-party package must not stop vaekit's own components
            warnings.warn(f"plug-in {point.name} ({point.value}) did not load: {err}", stacklevel=2)
    for name in os.environ.get(PLUGINS_VARIABLE, "").split(","):
        if name.strip():
            try:
                load_plugin(name.strip(), PLUGINS_VARIABLE)
            except ConfigError as err:  # a stale variable must not stop vaekit's own components
                warnings.warn(str(err), stacklevel=2)


def load_plugin(module: str, where: str = "--plugin") -> None:
    """Import ``module`` (a package: each of its modules) so that the components it defines register."""
    try:
        _import_whole(module)
    except ImportError as err:
        raise ConfigError(f"{where}: cannot import the plug-in module {module!r} ({err})") from err


def _import_whole(name: str) -> None:
    """Import module ``name`` and, for a package, every module inside it."""
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)


def kinds() -> list[Registry]:
    """Every registry, each with its built-in and plug-in components registered, in the order of a
    config (``data`` first) and then the other keys' names."""
    discover()
    sections = ("data.", "model.", "likelihood.", "objective.", "train.")
    return sorted(
        _CATALOGUE.values(),
        key=lambda r: (next((i for i, s in enumerate(sections) if r.key.startswith(s)), len(sections)), r.key),
    )


def kind(name: str) -> Registry:
    """The registry of components of kind ``name`` (e.g. ``"architecture"``)."""
    discover()
    return _CATALOGUE[name]


def option_sections(section: str) -> dict[str, type]:
    """``{name: options dataclass}`` of every component whose options live under ``section``."""
    found: dict[str, type] = {}
    for registry in kinds():
        for entry in registry:
            parent, _, name = entry.options_key.rpartition(".")
            if entry.options is None or parent != section:
                continue
            if found.setdefault(name, entry.options) is not entry.options:
                raise ValueError(f"{entry.options_key}: two components register different options under one name")
    return found
