"""What the server serves: one class per trained SuperNet, with everything that differs between
them (weight image, PB layout, programs, input and output bytes, the counters a program must
show). :class:`~sushi_sched.runtime.server.Server` is the same for both.

* :class:`MLPModel` (``digits-mlp``): the digits MLP; one query is a chain of GEMMs.
* :class:`CNNModel` (``digits-cnn``): the residual CNN; one query is CONVs, ADDs, a POOL and the
  classifier GEMM, from the image to the logits with no host step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_hw.program import act_bytes, int32_from_bytes, out_words

from ..compiler import (
    CompileError,
    PBLayout,
    WeightImage,
    layer_calls,
    network_program,
    offchip_weight_bytes,
    pb_layout,
)
from ..compiler import cache_program as gemm_cache_program
from ..subgraph import SubGraph, intersect_all
from ..supernet.base import SubNet, SuperNet
from .digits import ServeError, net_tensors, subnet_info, subnet_keys
from .memmap import Workload

#: the SuperNet ``sushi demo`` serves unless told otherwise
DEFAULT_MODEL = "digits-cnn"


class ServedModel(ABC):
    """A trained SuperNet as the server runs it on one accelerator configuration."""

    name: str
    space: SuperNet  #: the scheduler's view (accuracy table, layers, cost model input)

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg

    @property
    @abstractmethod
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """int8 query inputs and their labels (the split nothing was tuned on)."""

    @abstractmethod
    def subnet_id(self, key: str) -> str:
        """The canonical id of SubNet ``key``; ServeError naming close keys if there is none."""

    @abstractmethod
    def workload(self) -> Workload:
        """The largest program, CACHE program, input and output of any query."""

    @abstractmethod
    def weight_image(self, base: int) -> Any:  # noqa: ANN401 - WeightImage or ConvImage
        """Every SuperNet tensor in off-chip memory from ``base`` (``.end``, ``.writes()``)."""

    @abstractmethod
    def layout(self, image: Any, sub: SubGraph) -> Any:  # noqa: ANN401
        """The PB blocks of SubGraph ``sub`` (``.blocks``, ``.tiles``, ``.key()``)."""

    @abstractmethod
    def cache_program(self, image: Any, layout: Any) -> list[bytes]:  # noqa: ANN401
        """CACHE commands writing ``layout``'s blocks (no DONE)."""

    @abstractmethod
    def program(
        self, image: Any, sid: str, layout: Any, in_addr: int, out_addr: int
    ) -> list[bytes]:  # noqa: ANN401, E501
        """The whole query of SubNet ``sid``: input at ``in_addr`` to int32 logits at
        ``out_addr``, DONE included."""

    @abstractmethod
    def input_bytes(self, x: np.ndarray) -> bytes:
        """One query input as LOAD_ACT reads it."""

    @abstractmethod
    def check_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` as one int8 query input; ServeError naming what is wrong."""

    @abstractmethod
    def reference(self, sid: str, x: np.ndarray) -> np.ndarray:
        """int32 logits of the numpy int8 reference for one input."""

    @abstractmethod
    def logits(self, raw: bytes) -> np.ndarray:
        """int32 logits from the bytes STORE_ACT wrote."""

    @abstractmethod
    def expected(self, image: Any, sid: str, layout: Any, program: list[bytes]) -> dict[str, int]:  # noqa: ANN401, E501
        """The counters the program must show: ``rd_weight_bytes``, ``pb_read_bytes``,
        ``commands``."""

    @property
    def output_bytes(self) -> int:
        return self.workload().output_bytes

    def table(self) -> list[tuple[str, SubNet]]:
        """(id, the scheduler's SubNet) of every SubNet in the accuracy table."""
        return [(self.subnet_id(s.key), s) for s in self.space.accuracy_table()]

    def subgraph(self, keys: str | Iterable[str]) -> SubGraph:
        """The weight slices shared by SubNets ``keys`` (one key: that SubNet's slices; a
        comma-separated string or several keys: their intersection)."""
        space = self.space
        return intersect_all(
            SubGraph.of(space.subnet(space.config_of(self.subnet_id(k)))) for k in subnet_keys(keys)
        )


def _int8(a: np.ndarray) -> np.ndarray:
    """``a`` as int8; ServeError if a value does not fit."""
    if a.dtype != np.int8:
        if not np.array_equal(a, a.astype(np.int8)):
            raise ServeError("input values must be int8")
        a = a.astype(np.int8)
    return a


def _beats(cfg: AccelConfig, words: int) -> int:
    per_beat = max(1, cfg.mem_width // cfg.rows)  # as the compilers round LOAD/STORE_ACT
    return ceil_div(words, per_beat) * per_beat


class MLPModel(ServedModel):
    name = "digits-mlp"

    def __init__(self, cfg: AccelConfig, net=None):  # noqa: ANN001 - DigitsSuperNet
        from ..digits.space import DigitsSpace

        super().__init__(cfg)
        self.space = DigitsSpace(net) if net is not None else DigitsSpace()
        self.net = self.space.net

    @property
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self.net.test_set()

    def subnet_id(self, key: str) -> str:
        return subnet_info(self.net, key).id

    def calls(self, sid: str) -> list:
        return layer_calls(self.net.layers(sid))

    def workload(self) -> Workload:
        return Workload.of_digits(self.cfg, self.net.spec)

    def weight_image(self, base: int) -> WeightImage:
        return WeightImage.build(self.cfg, net_tensors(self.net), base)

    def layout(self, image: WeightImage, sub: SubGraph) -> PBLayout:
        return pb_layout(self.cfg, sub)

    def cache_program(self, image: WeightImage, layout: PBLayout) -> list[bytes]:
        return gemm_cache_program(self.cfg, image, layout)

    def program(
        self, image: WeightImage, sid: str, layout: PBLayout, in_addr: int, out_addr: int
    ) -> list[bytes]:
        return network_program(self.cfg, image, layout, self.calls(sid), 1, in_addr, out_addr)

    def check_input(self, x: np.ndarray) -> np.ndarray:
        k = self.net.spec.n_in
        a = np.asarray(x)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] != 1 or a.shape[1] < k:
            raise ServeError(f"input must be one row of at least {k} int8 values")
        return _int8(a)

    def input_bytes(self, x: np.ndarray) -> bytes:
        return act_bytes(self.cfg, x[:, : self.net.spec.n_in])

    def reference(self, sid: str, x: np.ndarray) -> np.ndarray:
        return self.net.reference_logits(sid, x)[0]

    def logits(self, raw: bytes) -> np.ndarray:
        n = self.net.spec.n_out
        nbytes = out_words(self.cfg, 1, n, int32=True) * self.cfg.rows
        return int32_from_bytes(self.cfg, raw[:nbytes], 1, n)[0]

    def expected(
        self, image: WeightImage, sid: str, layout: PBLayout, program: list[bytes]
    ) -> dict[str, int]:
        calls = self.calls(sid)
        off = offchip_weight_bytes(self.cfg, layout, calls, 1)
        whole = offchip_weight_bytes(self.cfg, PBLayout(), calls, 1)
        return {"rd_weight_bytes": off, "pb_read_bytes": whole - off, "commands": len(program)}


class CNNModel(ServedModel):
    name = "digits-cnn"

    def __init__(self, cfg: AccelConfig, net=None):  # noqa: ANN001 - CNNSuperNet
        from ..cnn.space import DigitsCNNSpace

        super().__init__(cfg)
        if not cfg.conv:
            raise ServeError(
                f"preset {cfg.name!r} has no convolution hardware (conv=False): the digits CNN "
                "cannot run on it; serve --supernet digits-mlp, or pick a preset with conv"
            )
        self.space = DigitsCNNSpace(net) if net is not None else DigitsCNNSpace()
        self.net = self.space.net
        self._work: Workload | None = None

    @property
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self.net.test_set()

    def subnet_id(self, key: str) -> str:
        try:
            return self.net.subnet(key).id
        except (KeyError, ValueError):
            ids = [s.id for s in self.net.subnets()]
            raise ServeError(
                f"unknown SubNet {key!r} of digits-cnn, e.g. {ids[0]} ({len(ids)} in all: "
                "sushi supernet show digits-cnn)"
            ) from None

    def workload(self) -> Workload:
        if self._work is None:
            from ..cnn.data import IMAGE
            from ..conv_image import fmap_words

            cfg = self.cfg
            image = self.weight_image(0)
            # LOAD_ACT, one command per op of the plan (CONV, ADD, POOL, GEMM), STORE_ACT, DONE
            longest = 3 + max(len(self.net.spec.plan(s.config)) for s in self.net.subnets())
            # one CACHE per contiguous run of source tiles: at most one per (N-tile, C-tile)
            runs = sum(t.nt * t.ct for t in image.tensors.values())
            self._work = Workload(
                prog_bytes=longest * isa.CMD_BYTES,
                cache_prog_bytes=(min(runs, cfg.pb_tiles) + 1) * isa.CMD_BYTES,
                input_bytes=_beats(cfg, fmap_words(cfg, IMAGE, IMAGE, 1)) * cfg.rows,
                output_bytes=_beats(cfg, fmap_words(cfg, 1, 1, self.n_out, True)) * cfg.rows,
            )
        return self._work

    @property
    def n_out(self) -> int:
        return self.net.spec.n_out

    def weight_image(self, base: int):  # noqa: ANN201 - ConvImage
        from ..cnn.lower import weight_image

        return weight_image(self.cfg, self.net, base)

    def layout(self, image, sub: SubGraph):  # noqa: ANN001, ANN201
        from ..cnn.lower import pb_layout as cnn_pb_layout

        return cnn_pb_layout(self.cfg, image, sub)

    def cache_program(self, image, layout) -> list[bytes]:  # noqa: ANN001
        from ..conv_image import cache_program

        return cache_program(self.cfg, image, layout)

    def program(self, image, sid: str, layout, in_addr: int, out_addr: int) -> list[bytes]:  # noqa: ANN001
        from ..cnn.lower import subnet_program

        return subnet_program(self.cfg, self.net, sid, image, layout, in_addr, out_addr)

    def check_input(self, x: np.ndarray) -> np.ndarray:
        from ..cnn.data import IMAGE

        a = np.asarray(x)
        if a.shape == (IMAGE * IMAGE,):
            a = a.reshape(IMAGE, IMAGE, 1)
        if a.shape != (IMAGE, IMAGE, 1):
            raise ServeError(f"input must be one {IMAGE}x{IMAGE} int8 image, got {a.shape}")
        return _int8(a)

    def input_bytes(self, x: np.ndarray) -> bytes:
        from ..cnn.lower import input_bytes

        return input_bytes(self.cfg, x)

    def reference(self, sid: str, x: np.ndarray) -> np.ndarray:
        return self.net.reference_logits(sid, x[None])[0]

    def logits(self, raw: bytes) -> np.ndarray:
        from ..cnn.lower import logits_from_bytes

        return logits_from_bytes(self.cfg, raw, self.n_out)

    def expected(self, image, sid: str, layout, program: list[bytes]) -> dict[str, int]:  # noqa: ANN001
        from ..cnn.lower import program_cost

        c = program_cost(self.cfg, program)
        return {
            "rd_weight_bytes": c.rd_weight_bytes,
            "pb_read_bytes": c.pb_read_bytes,
            "commands": c.commands,
        }


MODELS: dict[str, type[ServedModel]] = {"digits-cnn": CNNModel, "digits-mlp": MLPModel}
#: other names users type for them (the registry's space names included)
ALIASES = {"cnn": "digits-cnn", "mlp": "digits-mlp", "digits": "digits-mlp"}


def served_model(name: str, cfg: AccelConfig) -> ServedModel:
    """The served SuperNet called ``name`` on ``cfg``; ServeError naming the choices."""
    key = ALIASES.get(name, name)
    if key not in MODELS:
        raise ServeError(
            f"unknown SuperNet {name!r} to serve on the RTL; choose {', '.join(MODELS)} "
            "(the structural spaces, e.g. ofa-resnet50, run on the cost model: sushi simulate)"
        )
    try:
        return MODELS[key](cfg)
    except CompileError as e:
        raise ServeError(str(e)) from None
