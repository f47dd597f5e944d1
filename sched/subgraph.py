"""SubGraph algebra. A SubGraph maps SuperNet tensor names to the leading slice (dims) kept.

A SubNet *is* a SubGraph (the slices it uses); the shared part of two SubNets is their
intersection: per tensor present in both, the elementwise min of dims. Bytes are int8:
``sum(prod(dims))``. These are exact weight bytes; the tile-aligned PB footprint the hardware
needs is :func:`sushi_sched.cost.pb_footprint`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from functools import reduce

from .supernet.base import Dims, SubNet


class SubGraph(Mapping[str, Dims]):
    """An immutable, hashable mapping tensor -> dims. Tensors with an empty slice are dropped."""

    __slots__ = ("_d", "_hash")

    def __init__(self, slices: Mapping[str, Dims] | Iterable[tuple[str, Dims]] = ()):
        items = slices.items() if isinstance(slices, Mapping) else slices
        d = {str(t): tuple(int(x) for x in dims) for t, dims in items}
        for t, dims in d.items():
            if any(x < 0 for x in dims):
                raise ValueError(f"SubGraph tensor {t}: negative dims {dims}")
        self._d = {t: dims for t, dims in sorted(d.items()) if dims and min(dims) > 0}
        self._hash = hash(tuple(self._d.items()))

    @classmethod
    def of(cls, x: SubNet | SubGraph | Mapping[str, Dims]) -> SubGraph:
        if isinstance(x, SubGraph):
            return x
        if isinstance(x, SubNet):
            return cls(x.tensor_dims)
        return cls(x)

    # Mapping protocol
    def __getitem__(self, t: str) -> Dims:
        return self._d[t]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubGraph) and self._d == other._d

    def __repr__(self) -> str:
        return f"SubGraph({len(self)} tensors, {self.nbytes} B)"

    @property
    def nbytes(self) -> int:
        return sum(math.prod(d) for d in self._d.values())

    def __and__(self, other: SubGraph) -> SubGraph:
        return intersect(self, other)

    def __le__(self, other: SubGraph) -> bool:
        return is_sub(self, other)

    def as_json(self) -> dict[str, list[int]]:
        return {t: list(d) for t, d in self._d.items()}


EMPTY = SubGraph()


def _min_dims(a: Dims, b: Dims) -> Dims:
    if len(a) != len(b):
        raise ValueError(f"cannot intersect slices of different rank: {a} vs {b}")
    return tuple(map(min, a, b))


def intersect(
    a: SubNet | SubGraph | Mapping[str, Dims], b: SubNet | SubGraph | Mapping[str, Dims]
) -> SubGraph:
    """The shared SubGraph: tensors in both, elementwise min of their dims."""
    ga, gb = SubGraph.of(a), SubGraph.of(b)
    return SubGraph((t, _min_dims(ga[t], gb[t])) for t in ga if t in gb)


def intersect_all(items: Iterable[SubNet | SubGraph | Mapping[str, Dims]]) -> SubGraph:
    """Intersection of many (the part every one of them shares). Empty input -> empty SubGraph."""
    graphs = [SubGraph.of(x) for x in items]
    return reduce(intersect, graphs) if graphs else EMPTY


def union(a: SubGraph | SubNet, b: SubGraph | SubNet) -> SubGraph:
    """Smallest SubGraph containing both (elementwise max): what serving both would touch."""
    ga, gb = SubGraph.of(a), SubGraph.of(b)
    out = dict(ga)
    for t, d in gb.items():
        out[t] = tuple(map(max, out[t], d)) if t in out else d
    return SubGraph(out)


def is_sub(a: SubGraph | SubNet, b: SubGraph | SubNet) -> bool:
    """``a`` is contained in ``b`` (every slice of ``a`` is a leading slice of ``b``'s)."""
    ga, gb = SubGraph.of(a), SubGraph.of(b)
    return all(
        t in gb and all(x <= y for x, y in zip(d, gb[t], strict=True)) for t, d in ga.items()
    )


def nbytes(x: SubGraph | SubNet | Mapping[str, Dims]) -> int:
    """int8 bytes of a SubGraph (or of a SubNet's weights)."""
    return SubGraph.of(x).nbytes


def covered_bytes(subnet: SubNet | SubGraph, cached: SubGraph) -> int:
    """Bytes of ``subnet``'s weights that the cached SubGraph holds (its intersection's bytes)."""
    return intersect(subnet, cached).nbytes
