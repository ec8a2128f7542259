"""What vaekit offers: presets and registered components."""

from __future__ import annotations

import argparse

from vaekit.config import available_presets, preset_description
from vaekit.registry import kinds
from vaekit.schema import ConfigError


def presets(args: argparse.Namespace) -> None:
    for name in available_presets():
        print(f"{name:22s} {preset_description(name)}")


def components(args: argparse.Namespace) -> None:
    wanted = args.kind.replace("-", " ") if args.kind else None
    shown = [r for r in kinds() if wanted in (None, r.kind, r.kind + "s", r.kind.split()[0])]
    if not shown:
        raise ConfigError(f"components: unknown kind {args.kind!r}; use one of {', '.join(r.kind for r in kinds())}")
    if args.markdown:
        print(components_table(shown))
        return
    for registry in shown:
        print(f"{registry.kind}s ({registry.key}):")
        for entry in registry:
            capabilities = f"  [{', '.join(sorted(entry.capabilities))}]" if entry.capabilities else ""
            options = f"  options: {entry.options_key}.*" if entry.options_key else ""
            print(f"  {entry.name:16s} {entry.summary}{capabilities}{options}")


def components_table(registries: list) -> str:
    """The components as one Markdown table (the README's is this, for vaekit's own)."""
    lines = ["| kind | name | what it is | capabilities | options |", "|---|---|---|---|---|"]
    for registry in registries:
        for entry in registry:
            options = f"`{entry.options_key}.*`" if entry.options_key else ""
            capabilities = ", ".join(sorted(entry.capabilities))
            lines.append(f"| {registry.kind} | `{entry.name}` | {entry.summary} | {capabilities} | {options} |")
    return "\n".join(lines)
