"""The digits workload the server serves: SubNet keys, cached SubGraphs, the held-out images
a stream carries and the SuperNet's tensors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np

from ..digits.supernet import DigitsSuperNet, SubNetInfo
from ..subgraph import SubGraph, intersect_all


class ServeError(ValueError):
    """The request cannot be served as asked (unknown SubNet, a program or a cache plan that
    does not fit, a board or flash that does not match); the message says why."""


# ---- SubNets and SubGraphs of the digits SuperNet -----------------------------------------


def subnet_info(net: DigitsSuperNet, key: str) -> SubNetInfo:
    """The SubNet ``key``; ServeError naming close or example keys if there is none."""
    try:
        return net.subnet(key)
    except ValueError:
        pass
    ids = [s.id for s in net.subnets()]
    close = difflib.get_close_matches(str(key), ids, n=4, cutoff=0.6)
    some = close or [ids[0], ids[len(ids) // 2], ids[-1]]
    what = "did you mean" if close else "e.g."
    raise ServeError(
        f"unknown SubNet {key!r}; keys are i<inputs>-d<depth>-<width>-..., {what} "
        f"{', '.join(some)} ({len(ids)} in all: sushi board subnets)"
    )


def subgraph_of(net: DigitsSuperNet, keys: str | Iterable[str]) -> SubGraph:
    """The weight slices shared by SubNets ``keys`` (one key: that SubNet's slices; a
    comma-separated string or several keys: their intersection)."""
    return intersect_all(
        SubGraph({g.name: (g.k, g.n) for g in net.layers(subnet_info(net, k).id)})
        for k in subnet_keys(keys)
    )


def subnet_keys(keys: str | Iterable[str]) -> list[str]:
    """SubNet keys from a comma-separated string or an iterable; ServeError if there are none."""
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    keys = list(keys)
    if not keys:
        raise ServeError("no SubNet given for the cached SubGraph")
    return keys


def query_images(n: int, seed: int, n_test: int) -> np.ndarray:
    """Which held-out image each query of a stream carries (seeded)."""
    return np.random.default_rng(seed).integers(0, n_test, n)


def net_tensors(net: DigitsSuperNet) -> dict[str, np.ndarray]:
    return {n: np.ascontiguousarray(net.tensor(n)) for n in net.tensor_names()}
