"""Nested agent configurations: blocks, dotted keys and the ``tiny`` preset.

An agent's config is a frozen dataclass whose fields are the agent's own settings or BLOCKS:
fields holding another frozen config dataclass (``rssm: RSSMConfig``, ``actor_critic:
ActorCriticConfig``, ...). A block may be optional (``None``): the config's ``__post_init__``
fills the blocks its switches read and refuses the others, so an instance holds only what its
agent reads.

Keys: ``field`` for the agent's own settings, ``block.field`` for a block's. A bare name stands
for the one key of the instance that ends in it (``deter`` -> ``rssm.deter``); a name that ends
no key, or several, is an error listing the valid keys.

The ``tiny`` preset: each config class (agent or block) may declare ``tiny: ClassVar[dict]``,
small values of its own fields; an agent's preset is the union over its instance's classes, each
block's under its name, so a block shared by several agents defines its small sizes once.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Iterator


def block_class(cls: type, name: str) -> type | None:
    """The config dataclass field ``name`` of ``cls`` holds (``X`` or ``X | None``), or None for a plain setting."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _fields(cfg) -> Iterator[tuple[str, Any, bool]]:
    """``(name, value, is_block)`` for each field of the instance ``cfg``, in order; absent blocks left out."""
    for f in dataclasses.fields(cfg):
        value, is_block = getattr(cfg, f.name), block_class(type(cfg), f.name) is not None
        if not (is_block and value is None):
            yield f.name, value, is_block


def keys(cfg) -> dict[str, tuple[type, str]]:
    """Every key of the instance ``cfg``, in field order: ``key -> (class holding the field, field name)``."""
    out: dict[str, tuple[type, str]] = {}
    for name, value, is_block in _fields(cfg):
        if is_block:
            out.update({f"{name}.{k}": v for k, v in keys(value).items()})
        else:
            out[name] = (type(cfg), name)
    return out


def all_names(cls: type) -> set[str]:
    """Every field name of ``cls`` and of every block it may hold, present or not (for flat legacy configs)."""
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        block = block_class(cls, f.name)
        out |= {f.name} if block is None else all_names(block)
    return out


def find(key: str, known: dict) -> str:
    """The key of ``known`` that ``key`` names: itself (dotted) or the one key ending in the bare name.

    Raises ``KeyError`` (nothing matches) or ``ValueError`` (several match: ambiguous)."""
    hits = [key] if "." in key and key in known else [k for k in known if "." not in key and k.rsplit(".", 1)[-1] == key]
    if len(hits) > 1:
        raise ValueError(f"key {key!r} is ambiguous: write one of {', '.join(hits)}")
    if not hits:
        raise KeyError(key)
    return hits[0]


def own_settings(cls: type) -> set[str]:
    """The names of ``cls``'s own settings (its fields that are not blocks)."""
    return {f.name for f in dataclasses.fields(cls) if block_class(cls, f.name) is None}


def provisional(cls: type, values: dict[str, Any]):
    """``cls`` built from the own settings among ``values`` (typed): the blocks its switches ask for, at their defaults."""
    own = own_settings(cls)
    return cls(**{k: v for k, v in values.items() if k in own})


class UnknownKeys(ValueError):
    """Keys that name no key of a config; ``unknown`` lists them."""

    def __init__(self, unknown: list[str], owner: str, known: dict):
        self.unknown = unknown
        names = ", ".join(map(repr, unknown))
        super().__init__(f"unknown key{'s' if len(unknown) > 1 else ''} {names} for {owner}; valid keys: {', '.join(known)}")


def resolve_keys(cls: type, values: dict[str, Any], coerce=None, base: dict | None = None,
                 owner: str = "", ignore: set[str] = frozenset()) -> dict[str, Any]:
    """``values`` with every key written in full and every value typed by ``coerce(class, field, raw)``.

    The own settings (the switches among them) are read first, over ``base``; the other keys are
    found (``find``) among the keys of the instance they make. A key in ``ignore`` that names no key is
    left out. Raises ``UnknownKeys`` naming every unknown key (for ``owner``, default the class's name)
    and listing the valid ones, or ``ValueError`` for an ambiguous one."""
    coerce = coerce or (lambda holder, name, raw: raw)
    own = own_settings(cls)
    top = {k: coerce(cls, k, v) for k, v in values.items() if k in own}
    known = keys(provisional(cls, {**(base or {}), **top}))
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, raw in values.items():
        try:
            full = find(key, known)
        except KeyError:
            if key not in ignore:
                unknown.append(key)
            continue
        out[full] = top[key] if key in top else coerce(*known[full], raw)
    if unknown:
        raise UnknownKeys(unknown, owner or cls.__name__, known)
    return out


def build(cls: type, values: dict[str, Any]):
    """``cls`` with ``values`` (``{key: typed value}``, keys as ``keys`` names them) over its defaults.

    The agent's own settings (switches included) go first, so the blocks the switches ask for exist
    before their fields are set; each block starts from the agent's default block, not the block
    class's defaults."""
    cfg = cls(**{k: v for k, v in values.items() if "." not in k})
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if "." in key:
            block, _, name = key.partition(".")
            grouped.setdefault(block, {})[name] = value
    for block in grouped:
        if getattr(cfg, block, None) is None or block_class(cls, block) is None:
            raise ValueError(f"{cls.__name__} holds no block {block!r} here; blocks: {', '.join(blocks(cfg))}")
    return dataclasses.replace(cfg, **{b: dataclasses.replace(getattr(cfg, b), **v) for b, v in grouped.items()})


def make(cls: type, values: dict[str, Any] | None = None):
    """``cls`` with ``values`` (typed; keys bare or dotted) over its defaults: ``build`` after ``resolve_keys``."""
    return build(cls, resolve_keys(cls, values or {}))


def blocks(cfg) -> dict[str, Any]:
    """The blocks ``cfg`` holds: ``name -> instance``."""
    return {name: value for name, value, is_block in _fields(cfg) if is_block}


def tiny(cfg) -> dict[str, Any]:
    """The ``tiny`` preset of the instance ``cfg``: its class's ``tiny`` and every block's, under the block's name."""
    out = dict(getattr(type(cfg), "tiny", None) or {})
    for name, block in blocks(cfg).items():
        out.update({f"{name}.{k}": v for k, v in tiny(block).items()})
    return out


def to_dict(cfg) -> dict:
    """``cfg`` as nested plain data: blocks as mappings, absent blocks left out."""
    return {name: to_dict(value) if is_block else value for name, value, is_block in _fields(cfg)}


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """Nested plain data -> ``{dotted key: value}``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out

