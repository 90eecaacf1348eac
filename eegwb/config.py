"""Dataclass configs from YAML plus `--set a.b=value` overrides; unknown keys are errors.

A config is a tree of dataclasses (validated in their `__post_init__`). This module turns
plain data (a YAML file, a notebook form, CLI overrides) into that tree, checking every
key and value against the field types *before* any work starts, and back into plain data
(for checkpoints, MLflow params and the YAML written beside a run).

Errors are `ConfigError`s whose message names the source and the dotted key:

    configs/x.yaml: model.d_modl: unknown key (did you mean 'd_model'?)
    --set masking.mask_ratio=1.5: masking.mask_ratio must be in [0, 1], got 1.5
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from eegwb.errors import InputError

T = TypeVar("T")


class ConfigError(InputError):
    """A config key or value is wrong; the message names the key (and the file, if any)."""


# ---------------------------------------------------------------------- plain data <-> dataclasses


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp` and convert it (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where=f"{key}.")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {tp}"
        )
    if origin in (list, Sequence) or tp is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    return value


def _unknown(key: str, name: str, known: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return ConfigError(f"{key}: unknown key{hint}; known keys: {', '.join(known)}")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "") -> T:
    """Build the dataclass `cls` from plain data, checking keys, types and `__post_init__`.

    `where` is the dotted prefix used in error messages ("model." for a nested section).
    Missing keys take the dataclass defaults.
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in data:
        if name not in fields:
            raise _unknown(f"{where}{name}", str(name), list(fields))
    hints = _hints(cls)
    kwargs = {name: _convert(value, hints[name], f"{where}{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        msg = str(err)
        first = msg.split()[0].rstrip(":") if msg.split() else ""
        first = first.removeprefix(f"{cls.__name__}.")  # "ModelConfig.headdim: ..." style
        if first in fields:  # the message names the field: make it the dotted key
            rest = msg.split(None, 1)[1] if len(msg.split(None, 1)) > 1 else ""
            raise ConfigError(f"{where}{first}: {rest}") from err
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {msg}") from err


def to_dict(cfg: Any) -> Any:
    """A config tree as plain builtins (dicts, lists, str/int/float/bool/None): YAML-, JSON-
    and `torch.load(weights_only=True)`-safe."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def flat_items(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"model.d_model": 128, ...} for a config or its plain-data form (lists stay leaves)."""
    data = to_dict(data)
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and v:
            out.update(flat_items(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(a: Any, b: Any) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two configs: {key: (a_value, b_value)}."""
    fa, fb = flat_items(a), flat_items(b)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}


# ----------------------------------------------------------------------------- overrides


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key a config class accepts (dataclass sections expanded)."""
    keys = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += leaf_keys(tp, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def resolve_key(cls: type, key: str) -> str:
    """The full dotted key for `key`: itself when valid, else a unique leaf name
    (`mask_ratio` -> `masking.mask_ratio`); otherwise a ConfigError naming it."""
    keys = leaf_keys(cls)
    if key in keys:
        return key
    if "." not in key:
        matches = [k for k in keys if k.rsplit(".", 1)[-1] == key]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ConfigError(f"{key}: ambiguous key, one of {matches}")
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ConfigError(f"{key}: unknown key{hint}")


def parse_value(text: str) -> Any:
    """A CLI value as YAML: `64` -> 64, `0.5` -> 0.5, `true` -> True, `null` -> None, `[1, 2]`."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse value {text!r} ({err})") from err


def parse_override(text: str) -> tuple[str, Any]:
    """`"model.d_model=64"` -> ("model.d_model", 64)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. model.d_model=64")
    return key.strip(), parse_value(value)


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


Overrides = Sequence["str | tuple[str, Any]"] | Mapping[str, Any]


def override_items(overrides: Overrides) -> list[tuple[str, Any]]:
    """(key, value) pairs from `KEY=VALUE` strings (`--set`, values read as YAML), (key, value)
    pairs (CLI flags, notebook widgets: values as they are) or a {key: value} mapping."""
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    return [parse_override(o) if isinstance(o, str) else tuple(o) for o in overrides]


def apply_overrides(
    cls: type, data: Mapping[str, Any] | None, overrides: Overrides
) -> dict[str, Any]:
    """Plain config data with overrides applied, in order (see `override_items`).

    Keys are resolved against `cls` first, so a typo fails here, naming the override.
    """
    out = to_dict(dict(data or {}))
    for key, value in override_items(overrides):
        try:
            full = resolve_key(cls, key)
        except ConfigError as err:
            raise ConfigError(f"--set {key}={value}: {err}") from err
        set_dotted(out, full, to_dict(value))
    return out


# ----------------------------------------------------------------------------- files


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Overrides = (),
) -> T:
    """Load `cls` from a YAML file (or defaults when `path` is None) with overrides applied.

    Every key and value is checked before this returns; errors name the file and key.
    """
    data = read_yaml(path) if path is not None else {}
    try:
        base = from_dict(cls, data)  # reports file errors before override errors
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    if not overrides:
        return base
    merged = apply_overrides(cls, to_dict(base), overrides)
    try:
        return from_dict(cls, merged)
    except ConfigError as err:
        shown = (
            overrides
            if isinstance(overrides, Mapping)
            else [o if isinstance(o, str) else f"{o[0]}={o[1]!r}" for o in overrides]
        )
        raise ConfigError(f"{path or 'defaults'} with overrides {shown}: {err}") from err
