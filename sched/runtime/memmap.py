"""The one memory map of a served workload: where programs, input, output and weights live.

One planner for every backend. On the golden model and the RTL the whole memory
``[0, cfg.mem_bytes)`` is host-writable and the weight image is written into it; on a board the
host writes only its on-chip RAM ``[0, ram_bytes)`` (the size comes from INFO) and the weights
are already in the SPI flash, at ``flash_base(cfg)`` (``weights_preloaded``).

Regions, in address order, each aligned to a command and a memory beat: ``prog_slots`` query
program slots (the server writes each compiled program once and keeps it while it has slots),
the CACHE program, the input, the output, the weight image when it is in RAM, and the rest as
``scratch`` (free for other programs, e.g. the co-simulation's free-run program).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_hw.program import in_words, out_words

#: query program slots planned when the memory has room for them (the golden model, the RTL)
DEFAULT_PROG_SLOTS = 64


class MemoryMapError(ValueError):
    """The workload does not fit the memory; the message says what needs how much."""


def _align(x: int, a: int) -> int:
    return ceil_div(x, a) * a


@dataclass(frozen=True)
class Workload:
    """What the memory map is sized for: the largest program, CACHE program (its DONE
    included), input and output of any query of a stream, in bytes."""

    prog_bytes: int
    cache_prog_bytes: int
    input_bytes: int
    output_bytes: int

    @classmethod
    def of_digits(cls, cfg: AccelConfig, spec) -> Workload:  # noqa: ANN001 - SuperNetSpec
        """The digits MLP: LOAD_ACT, one GEMM per layer, STORE_ACT, DONE; one CACHE per
        cached tile column."""
        columns = sum(ceil_div(n, cfg.cols) for _, n in spec.tensor_shapes().values())
        per_beat = max(1, cfg.mem_width // cfg.rows)  # as the compiler rounds LOAD/STORE_ACT

        def beats(words: int) -> int:
            return ceil_div(words, per_beat) * per_beat

        return cls(
            (spec.max_depth + 4) * isa.CMD_BYTES,
            (min(columns, cfg.pb_tiles) + 1) * isa.CMD_BYTES,
            beats(in_words(cfg, 1, spec.n_in)) * cfg.rows,
            beats(out_words(cfg, 1, spec.n_out, int32=True)) * cfg.rows,
        )


@dataclass(frozen=True)
class MemoryMap:
    ram_bytes: int  #: host-writable memory [0, ram_bytes)
    prog: int  #: first query program slot
    prog_bytes: int  #: bytes per slot
    prog_slots: int
    cache_prog: int
    cache_prog_bytes: int
    input: int
    input_bytes: int
    output: int
    output_bytes: int
    weights: int  #: base of the weight image
    weights_preloaded: bool  #: the image is already there (a board's flash); never written
    scratch: int  #: the rest of the RAM
    scratch_bytes: int

    @classmethod
    def plan(
        cls,
        cfg: AccelConfig,
        work: Workload,
        *,
        ram_bytes: int | None = None,
        weight_bytes: int = 0,
        weight_base: int | None = None,
        prog_slots: int = DEFAULT_PROG_SLOTS,
    ) -> MemoryMap:
        """Plan the map in ``[0, ram_bytes)`` (default: all of ``cfg.mem_bytes``). With
        ``weight_base`` the weights are preloaded there; otherwise ``weight_bytes`` of them go
        into RAM after the other regions. At least one program slot, at most ``prog_slots``."""
        ram = cfg.mem_bytes if ram_bytes is None else ram_bytes
        align = max(isa.CMD_BYTES, cfg.mem_width)
        prog = _align(work.prog_bytes, align)
        cache, inp, out = work.cache_prog_bytes, work.input_bytes, work.output_bytes
        fixed = [cache, inp, out] + ([weight_bytes] if weight_base is None else [])
        need = prog + sum(_align(s, align) for s in fixed)
        if need > ram:
            parts = f"query program {prog}, CACHE program {cache}, input {inp}, logits {out}"
            if weight_base is None:
                parts += f", weights {weight_bytes}"
            raise MemoryMapError(
                f"a query needs {need} bytes of {'board RAM' if ram_bytes else 'memory'} "
                f"({parts}, aligned to {align}); there are {ram}"
            )
        # as many slots as fit in what is left (scratch keeps at least one more slot's room)
        room = (ram - need) // prog
        slots = max(1, min(prog_slots, room))
        at, addrs = slots * prog, []
        for size in fixed:
            addrs.append(at)
            at = _align(at + size, align)
        c, i, o = addrs[:3]
        w = addrs[3] if weight_base is None else weight_base
        return cls(
            ram, 0, prog, slots, c, cache, i, inp, o, out, w, weight_base is not None, at, ram - at
        )

    def slot(self, i: int) -> int:
        if not 0 <= i < self.prog_slots:
            raise IndexError(f"program slot {i} of {self.prog_slots}")
        return self.prog + i * self.prog_bytes

    def as_dict(self) -> dict:
        return asdict(self)
