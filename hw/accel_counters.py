"""SushiAccel's event counters (:class:`~.isa.Counter`) on a :class:`~.counters.CounterBank`."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig
from .counters import CounterBank


class AccelCounters(wiring.Component):
    """``inc[c]``: event :class:`~.isa.Counter` ``c`` happened this cycle (RD_CMD_BYTES is
    not an input); ``clear`` zeroes them all; ``value`` is counter ``sel``
    :attr:`CounterBank.latency` cycles after the select, with ``BuildOptions.counter_overflow``
    its overflow flag in bit ``counter_bits``."""

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        super().__init__(
            {
                "inc": In(isa.NUM_COUNTERS),
                "clear": In(1),
                "sel": In(range(isa.NUM_COUNTERS)),
                "value": Out(64),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, C = self.cfg, isa.Counter
        W = cfg.mem_width
        # every decoded command was fetched whole, so RD_CMD_BYTES is COMMANDS times the bytes
        # of a fetch: one counter less (read during a fetch, it lags by that command's beats)
        counted = [c for c in C if c != C.RD_CMD_BYTES]
        amount = {C.RD_WEIGHT_BYTES: W, C.RD_ACT_BYTES: W, C.WR_BYTES: W, C.PB_READ_BYTES: cfg.rows}
        bits = cfg.counter_bits
        m.submodules.bank = bank = CounterBank(
            [amount.get(c, 1) for c in counted],
            bits,
            read_reg=self.opts.pipeline_regs,
            overflow=self.opts.counter_overflow,
        )
        m.d.comb += bank.clear.eq(self.clear)
        for i, c in enumerate(counted):
            m.d.comb += bank.inc[i].eq(self.inc[c])
        with m.Switch(self.sel):
            for c in C:
                with m.Case(c):
                    m.d.comb += bank.sel.eq(counted.index(C.COMMANDS if c == C.RD_CMD_BYTES else c))
        # bank.value lags sel by bank.latency cycles: so does this select
        cmd_bytes_sel = self.sel == C.RD_CMD_BYTES
        for i in range(CounterBank.latency):
            delayed = Signal(name=f"cmd_bytes_sel_{i + 1}")
            m.d.sync += delayed.eq(cmd_bytes_sel)
            cmd_bytes_sel = delayed
        shift = max(isa.CMD_BYTES, W).bit_length() - 1
        cmd_bytes = (bank.value[:bits] << shift)[:bits]
        if self.opts.counter_overflow:
            # the flag (bit `bits`) for RD_CMD_BYTES: COMMANDS' own, or the shift's carry. A
            # program holds at most mem_bytes / 32 commands: when their bytes fit, no carry
            most = cfg.mem_bytes // isa.CMD_BYTES * max(isa.CMD_BYTES, W)
            carry = bank.value[bits - shift : bits].any() if most >= 1 << bits else 0
            cmd_bytes = Cat(cmd_bytes, bank.value[bits] | carry)
        m.d.comb += self.value.eq(Mux(cmd_bytes_sel, cmd_bytes, bank.value))
        return m
