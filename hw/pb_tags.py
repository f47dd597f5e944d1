"""Persistent Buffer valid tags: which off-chip tile each PB tile holds a copy of
(:attr:`BuildOptions.pb_tags`).

CACHE copies off-chip tile ``mem_addr + j*tile_bytes`` to PB tile ``pb_tile + j``. A GEMM/CONV
that takes weight tile (nt, ct, t) from PB tile ``p`` uses it in place of the off-chip tile at
``w_addr + (nt*w_nstride + ct*w_cstride + t)*tile_bytes``. So a PB tile's tag is the address it
was cached from (in ``mem_width`` units: CACHE addresses are aligned) and a valid bit; a PB read
whose expected address is another, or whose tile is not valid, raises ``uncached``. It is sticky
until ``clear`` (the next GEMM/CONV's start); the sequencer halts with PB_UNCACHED when the
command ends. The check runs beside the PB read, so it costs no cycle, and the failing command
runs to its end: its effects are those of the same command without tags, which the golden
model reproduces exactly (``sushi_sched.isa_sim``).

CACHE writes a tag with every PB word: invalid for a tile's first words, valid with its address
at its last, so a tile a memory timeout cut short is never valid. The tags, like the PB's data,
are not cleared by a reset (they still describe what the PB holds); the configuration
initialises them invalid.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .bram import RegisteredRam
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig, clog2


def tag_bits(cfg: AccelConfig) -> int:
    """Width of a tag: an off-chip byte address in ``mem_width`` units."""
    return clog2(cfg.mem_bytes) - (cfg.mem_width.bit_length() - 1)


def entry_layout(cfg: AccelConfig) -> data.StructLayout:
    return data.StructLayout({"valid": 1, "addr": tag_bits(cfg)})


def look_signature(cfg: AccelConfig) -> wiring.Signature:
    """A PB tile read to check (the reader's side): PB tile ``tile`` stands for the off-chip
    tile at ``addr`` (``mem_width`` units); ``bad``: that address is not aligned, so no tag
    can match it."""
    return wiring.Signature(
        {
            "en": Out(1),
            "tile": Out(range(max(2, cfg.pb_tiles))),
            "addr": Out(tag_bits(cfg)),
            "bad": Out(1),
        }
    )


class PbTags(wiring.Component):
    """The tag RAM, its writes during CACHE and its checks during a GEMM/CONV.

    ``cache_start``: the cycle before a CACHE runs (any DMA start: only a CACHE writes the
    PB), with its ``cache_addr``; ``pb_we``/``pb_waddr``: the PB word CACHE writes. ``look``:
    a PB tile read to check; ``uncached`` rises :attr:`latency` cycles after a failing one."""

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        depth = max(1, cfg.pb_bytes // cfg.rows)
        self.ram_depth = max(2, cfg.pb_tiles)
        #: cycles from ``look.en`` to ``uncached`` (the RAM's read, then the compare)
        self.latency = RegisteredRam.latency_for(opts.pipeline_regs, False) + 1
        super().__init__(
            {
                "cache_start": In(1),
                "cache_addr": In(clog2(cfg.mem_bytes)),
                "pb_we": In(1),
                "pb_waddr": In(range(depth)),
                "look": In(look_signature(cfg)),
                "clear": In(1),
                "uncached": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, pipe_regs = self.cfg, self.opts.pipeline_regs
        lr = cfg.rows.bit_length() - 1  # a tile is rows PB words
        lw = cfg.mem_width.bit_length() - 1
        lt = cfg.tile_bytes.bit_length() - 1
        assert lt >= lw, "a tile is whole memory beats"
        entry = entry_layout(cfg)
        # ECP5: the read data in the block RAM's output register, the write port registered
        # (its address comes from the DMA's counter across the die); a GEMM reads tags many
        # cycles after the CACHE that wrote them
        m.submodules.ram = ram = RegisteredRam(
            entry.size,
            self.ram_depth,
            registered=pipe_regs,
            write_registered=pipe_regs,
            opts=self.opts,
        )

        # ---- CACHE: the source address of the tile being written, a tile at a time -----------
        src = Signal(tag_bits(cfg))
        last_word = self.pb_waddr[:lr] == cfg.rows - 1
        with m.If(self.cache_start):
            m.d.sync += src.eq(self.cache_addr[lw:])
        with m.Elif(self.pb_we & last_word):
            m.d.sync += src.eq(src + (1 << (lt - lw)))
        m.d.comb += [
            ram.write.en.eq(self.pb_we),
            ram.write.addr.eq(self.pb_waddr[lr:]),
            ram.write.data.eq(Cat(last_word, src)),  # entry: valid, addr
        ]

        # ---- GEMM/CONV: the expected address beside the tag's read, then the compare ---------
        look = self.look
        m.d.comb += [ram.read.en.eq(look.en), ram.read.addr.eq(look.tile)]
        en, addr, bad = look.en, look.addr, look.bad
        for i in range(ram.read_latency):
            en_q, addr_q, bad_q = Signal(name=f"en_q{i}"), Signal.like(addr), Signal()
            m.d.sync += [en_q.eq(en), addr_q.eq(addr), bad_q.eq(bad)]
            en, addr, bad = en_q, addr_q, bad_q
        got = data.View(entry, ram.read.data)
        with m.If(self.clear):
            m.d.sync += self.uncached.eq(0)
        with m.Elif(en & (~got.valid | (got.addr != addr) | bad)):
            m.d.sync += self.uncached.eq(1)
        return m
