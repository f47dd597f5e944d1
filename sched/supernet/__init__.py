"""SuperNet spaces: the generic interface (``base``) and the published OFA spaces."""

from .base import Dims, Layer, SubNet, SubNetError, SuperNet
from .registry import get_supernet, register_supernet, supernet_names

__all__ = [
    "Dims",
    "Layer",
    "SubNet",
    "SubNetError",
    "SuperNet",
    "get_supernet",
    "register_supernet",
    "supernet_names",
]
