"""How configs are read and checked: safe YAML (no aliases, size-capped), dotted overrides, and the
typed build of the config dataclasses (types, Literal choices with "did you mean", value ranges),
every message naming the dotted key. ``vaekit.config`` holds the dataclasses themselves."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import re
import stat
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the dotted key."""


def bounded(default: Any, low: float | None = None, high: float | None = None, *, above: bool = False) -> Any:
    """A field whose value (or each list item) must lie in [low, high] (``above``: strictly > low)."""
    factory = {"default_factory": (lambda: list(default))} if isinstance(default, list) else {"default": default}
    return field(metadata={"low": low, "high": high, "above": above}, **factory)


def duration(default: float | None) -> Any:
    """Seconds, written as a number or a duration string such as ``90s``, ``10m``, ``1h30m``."""
    return field(default=default, metadata={"low": 0, "high": None, "above": True, "duration": True})


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(key: str, value: Any) -> Any:
    """``"1h30m"`` -> 5400.0; numbers and ``None`` pass through (checked like any float)."""
    if not isinstance(value, str):
        return value
    text = value.strip().replace(" ", "").lower()
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groups()):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}: {_short(value)} is not a duration (e.g. 600, 90s, 10m, 1h30m)") from None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def positive(default: Any, high: float | None = None) -> Any:
    return bounded(default, 1, high)


def non_negative(default: Any, high: float | None = None) -> Any:
    return bounded(default, 0, high)


# Upper bounds of sizes, so that a typo or a hostile file is one line, not an allocation of terabytes
MAX_IMAGE_SIZE = 4096  # pixels per side
MAX_WIDTH = 8192  # channels of a layer
MAX_LATENT = 65536  # latent dimensions
MAX_COUNT = 1_000_000  # generated images, epochs, batch, ...

MAX_CONFIG_BYTES = 1 << 20  # a config is a page of text; anything larger is refused unread


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases: an alias bomb ("billion laughs") cannot expand."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(f"line {mark.line + 1}: YAML aliases (*name) are not allowed in a vaekit config")
        return super().compose_node(parent, index)


def parse_yaml(text: str, where: str = "config") -> Any:
    """YAML text as Python values, refusing aliases and anything over ``MAX_CONFIG_BYTES``."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: {len(text)} characters is too large for a config (limit {MAX_CONFIG_BYTES})")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML: {_short(str(err), 300)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a config") from None


class FileRefused(ValueError):
    """A file that is not read: not a regular file, or larger than the limit."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. A device (``/dev/zero``), a pipe or a
    larger file is refused (``FileRefused``) without reading more than ``limit + 1`` bytes."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise FileRefused(f"{path}: not a regular file")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"{path}: too large (over {limit:,} bytes)")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping (size checked while reading, UTF-8, no aliases)."""
    path = Path(path)
    try:
        text = read_bounded(path, MAX_CONFIG_BYTES).decode("utf-8")
    except FileRefused as err:
        raise ConfigError(f"{err} for a config (a config is at most {MAX_CONFIG_BYTES:,} bytes)") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text (UTF-8) file: {err.reason} at byte {err.start}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror or err})") from None
    raw = parse_yaml(text, str(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, ...), got {_short(raw)}")
    return raw


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FREE_MAPPINGS = ("options", "encoder_args", "decoder_args")


def split_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    key, text = item.split("=", 1)
    try:
        value = parse_yaml(text, f"override {key.strip()}") if text.strip() else None
    except ConfigError:
        value = text
    return key.strip(), value


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            _raise_unknown(".".join(parts[: depth + 1]), node)
        node = child
    free = len(parts) > 1 and parts[-2] in _FREE_MAPPINGS  # plug-ins' own options take any key
    if parts[-1] not in node and not free:
        _raise_unknown(key, node)
    node[parts[-1]] = value


def dotted_items(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": 1}`` for ``{"a": {"b": 1}}``: every leaf of nested dicts under its dotted key (an
    empty dict is a leaf): the keys ``set_dotted`` and ``--set`` take."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(dotted_items(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _raise_unknown(key: str, siblings: dict[str, Any]) -> typing.NoReturn:
    last = key.rsplit(".", 1)[-1]
    hint = difflib.get_close_matches(last, list(siblings), n=1)
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    suggestion = f" (did you mean {prefix + hint[0]!r}?)" if hint else ""
    raise ConfigError(f"unknown config key {key!r}{suggestion}")


def build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_short(data)}")
    hints = typing.get_type_hints(cls)
    sections = cls.option_types() if hasattr(cls, "option_types") else {}  # components' options (Sectioned)
    fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name != "sections"}
    for key in data:
        if key not in fields and key not in sections:
            _raise_unknown(prefix + key, dict.fromkeys([*fields, *sections]))
    specs = {spec.name: spec for spec in dataclasses.fields(cls)}
    raw = {
        name: parse_duration(prefix + name, data[name]) if specs[name].metadata.get("duration") else data[name]
        for name in fields
        if name in data
    }
    values = {name: _coerce(hints[name], value, prefix + name) for name, value in raw.items()}
    for spec in dataclasses.fields(cls):
        if spec.name in values and spec.metadata:
            _check_range(prefix + spec.name, values[spec.name], spec.metadata)
            if "check" in spec.metadata:
                spec.metadata["check"](prefix + spec.name, values[spec.name])
    if sections:
        values["sections"] = {
            name: build(kind, data[name], f"{prefix}{name}.") for name, kind in sections.items() if name in data
        }
    built = cls(**values)
    check = getattr(built, "_check", None)
    if check is not None:
        check(prefix)
    return built


def plain(value: Any) -> Any:
    """A config as plain YAML values: dataclasses as mappings (a section's registered options beside
    its own fields), lists and mappings copied."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        tree = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "sections"}
        if hasattr(value, "option_types"):
            tree |= {name: plain(options) for name, options in value.sections.items()}
        return tree
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def _check_range(key: str, value: Any, meta: Any) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None:
            continue
        low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
        if low is not None and (item <= low if above else item < low):
            raise ConfigError(f"{key}: must be {'above' if above else 'at least'} {low:g}, got {_short(item)}")
        if high is not None and item > high:
            raise ConfigError(f"{key}: must be at most {high:g}, got {_short(item)}")


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key + ".")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        given = [option for option in options if option is not type(None)]
        if len(given) == 1:  # Optional[X]: X's own message
            return _coerce(given[0], value, key)
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {_short(value)} is not a valid {hint}")
    if origin is Literal:
        options = typing.get_args(hint)
        if value in options and not isinstance(value, bool):
            return value
        hint_text = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
        raise ConfigError(
            f"{key}: {_short(value)} is not one of {', '.join(map(str, options))}"
            + (f" (did you mean {hint_text[0]!r}?)" if hint_text else "")
        )
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{key}: expected a mapping of names to values, got {_short(value)}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {_short(value)}")
        (item,) = typing.get_args(hint)
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {_short(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {_short(value)}")
    if hint is float:
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value) if abs(value) < 1e308 or isinstance(value, float) else math.inf
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {_short(value)}")
        if not math.isfinite(number):  # nan, inf, or a value too large for a float (1e400)
            raise ConfigError(f"{key}: must be a finite number, got {_short(value)}")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {_short(value)}")
    return value
