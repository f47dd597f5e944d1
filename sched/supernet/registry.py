"""Name -> SuperNet. Other spaces (the project's digits SuperNet) join with
:func:`register_supernet`, or by exposing ``SUPERNETS = {name: factory}`` in
``sushi_sched.digits`` (picked up lazily here, so this module never depends on it)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .base import SuperNet
from .ofa_mbv3 import OFAMobileNetV3
from .ofa_resnet50 import OFAResNet50

_FACTORIES: dict[str, Callable[[], SuperNet]] = {
    "ofa-resnet50": OFAResNet50,
    "ofa-mbv3": OFAMobileNetV3,
}
_ALIASES = {"ofa-mobilenetv3": "ofa-mbv3", "resnet50": "ofa-resnet50", "mbv3": "ofa-mbv3"}
_CACHE: dict[str, SuperNet] = {}
_PLUGINS = ("sushi_sched.digits", "sushi_sched.cnn")
_PLUGIN_ERRORS: dict[str, str] = {}


def register_supernet(name: str, factory: Callable[[], SuperNet]) -> None:
    _FACTORIES[name] = factory
    _CACHE.pop(name, None)


def _load_plugins() -> None:
    for mod_name in _PLUGINS:
        try:
            mod = importlib.import_module(mod_name)
        except Exception as e:  # a broken plugin must not break the built-in spaces
            _PLUGIN_ERRORS[mod_name] = f"{type(e).__name__}: {e}"
            continue
        for name, factory in getattr(mod, "SUPERNETS", {}).items():
            _FACTORIES.setdefault(name, factory)


def supernet_names() -> list[str]:
    _load_plugins()
    return sorted(_FACTORIES)


def get_supernet(name: str) -> SuperNet:
    """The SuperNet called ``name``; unknown names raise ``ValueError`` listing the known ones."""
    name = _ALIASES.get(name, name)
    if name not in _FACTORIES:
        _load_plugins()
    if name not in _FACTORIES:
        why = "".join(f" ({m} failed to load: {e})" for m, e in _PLUGIN_ERRORS.items())
        raise ValueError(f"unknown SuperNet {name!r}; known: {', '.join(supernet_names())}{why}")
    if name not in _CACHE:
        _CACHE[name] = _FACTORIES[name]()
    return _CACHE[name]
