"""Board memory system: on-chip RAM and SPI flash behind one memory-port interconnect.

Address map seen by every master (the accelerator and the UART host link), byte addresses. It
lies inside the accelerator's address space ``[0, cfg.mem_bytes)`` (its range checks reject
anything above) and derives from the configuration alone (:func:`flash_window`):

* ``[0, ram_bytes)``: on-chip RAM (programs, activations, results); read and write.
  ``ram_bytes <= cfg.mem_bytes // 2`` (:func:`check_ram_bytes`).
* ``[cfg.mem_bytes // 2, cfg.mem_bytes)``: the board's SPI flash, read only; flash byte
  ``flash_offset + (addr - flash_base(cfg))``. Weights live here. The window is capped at
  16 MiB, all that the 24-bit FAST READ address reaches.

Anything else, and writes to flash, are consumed (reads return zeros) and set ``bus_error``.
The interconnect serves one burst at a time (fixed priority: master 0 first), which is what a
single SPI flash and a single-ported RAM can do anyway.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out
from sushi_hw.config import AccelConfig
from sushi_hw.mem_port import mem_port_signature
from sushi_hw.spram import SinglePortRam

MAX_FLASH_WINDOW = 1 << 24  # 16 MiB, the largest flash the 24-bit READ command addresses


def flash_window(cfg: AccelConfig) -> tuple[int, int]:
    """(base, size) in bytes of the SPI flash in the memory map: the upper half of the
    accelerator's address space, at most 16 MiB of it."""
    base = cfg.mem_bytes // 2
    return base, min(cfg.mem_bytes - base, MAX_FLASH_WINDOW)


def flash_base(cfg: AccelConfig) -> int:
    """Address at which the accelerator (and the host link) see flash byte ``flash_offset``."""
    return flash_window(cfg)[0]


def check_ram_bytes(cfg: AccelConfig, ram_bytes: int) -> None:
    """ValueError unless the on-chip RAM fits below the flash window and is whole beats."""
    if ram_bytes <= 0 or ram_bytes % cfg.mem_width:
        raise ValueError(
            f"on-chip RAM of {ram_bytes} bytes must be a positive multiple of mem_width "
            f"({cfg.mem_width})"
        )
    base = flash_base(cfg)
    if ram_bytes > base:
        raise ValueError(
            f"on-chip RAM of {ram_bytes} bytes overlaps the flash window at {base:#x}: config "
            f"{cfg.name!r} has mem_bytes = {cfg.mem_bytes}, so RAM may be at most "
            f"mem_bytes // 2 = {base} bytes"
        )


class MemInterconnect(wiring.Component):
    """``n_masters`` memory-port masters onto a RAM port and a flash port."""

    def __init__(self, cfg: AccelConfig, n_masters: int, ram_bytes: int):
        check_ram_bytes(cfg, ram_bytes)
        self.cfg, self.n, self.ram_bytes = cfg, n_masters, ram_bytes
        self.flash_base, self.flash_size = flash_window(cfg)
        sig = mem_port_signature(cfg)
        members = {f"m{i}": In(sig) for i in range(n_masters)}
        members.update({"ram": Out(sig), "flash": Out(sig), "bus_error": Out(1)})
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        masters = [getattr(self, f"m{i}") for i in range(self.n)]
        slaves = [self.ram, self.flash]
        grant = Signal(range(max(2, self.n)))
        target = Signal(2)  # 0 ram, 1 flash, 2 nowhere
        write = Signal()
        left = Signal(17)

        # the flash window is a power of two aligned to its size: an equality compare of the
        # high address bits decodes it, and its low bits are the flash address
        wbits = self.flash_size.bit_length() - 1
        assert self.flash_size == 1 << wbits and self.flash_base % self.flash_size == 0

        def decode(a):
            in_ram = a < self.ram_bytes
            in_flash = a[wbits:] == self.flash_base >> wbits
            return Mux(in_ram, 0, Mux(in_flash, 1, 2))

        with m.FSM():
            with m.State("IDLE"):
                # lowest-numbered requesting master wins
                sel = Signal(range(max(2, self.n)))
                any_req = Signal()
                for i in reversed(range(self.n)):
                    with m.If(masters[i].req.valid):
                        m.d.comb += [sel.eq(i), any_req.eq(1)]
                with m.Switch(sel):
                    for i, mst in enumerate(masters):
                        with m.Case(i):
                            p = mst.req.payload
                            tgt = Signal(2, name=f"tgt{i}")
                            bad = Signal(name=f"bad{i}")
                            m.d.comb += [
                                tgt.eq(decode(p.addr)),
                                bad.eq((tgt == 2) | ((tgt == 1) & p.write)),
                            ]
                            for s_i, slv in enumerate(slaves):
                                with m.If(~bad & (tgt == s_i)):
                                    m.d.comb += [
                                        slv.req.valid.eq(mst.req.valid),
                                        slv.req.payload.beats.eq(p.beats),
                                        slv.req.payload.write.eq(p.write),
                                        slv.req.payload.addr.eq(
                                            p.addr[:wbits] if s_i == 1 else p.addr
                                        ),
                                        mst.req.ready.eq(slv.req.ready),
                                    ]
                            with m.If(bad):
                                m.d.comb += mst.req.ready.eq(1)
                            with m.If(any_req & mst.req.ready):
                                m.d.sync += [
                                    grant.eq(i),
                                    target.eq(Mux(bad, 2, tgt)),
                                    write.eq(p.write),
                                    left.eq(p.beats),
                                ]
                                with m.If(bad):
                                    m.d.sync += self.bus_error.eq(1)
                                with m.If(p.beats != 0):
                                    m.next = "DATA"
            with m.State("DATA"):
                for i, mst in enumerate(masters):
                    with m.If(grant == i):
                        for s_i, slv in enumerate(slaves):
                            with m.If(target == s_i):
                                m.d.comb += [
                                    slv.wdata.valid.eq(mst.wdata.valid & write),
                                    slv.wdata.payload.eq(mst.wdata.payload),
                                    mst.rdata.valid.eq(slv.rdata.valid & ~write),
                                    mst.rdata.payload.eq(slv.rdata.payload),
                                ]
                                with m.If(write):
                                    m.d.comb += mst.wdata.ready.eq(slv.wdata.ready)
                                with m.Else():
                                    m.d.comb += slv.rdata.ready.eq(mst.rdata.ready)
                        with m.If(target == 2):  # nowhere: swallow writes, read zeros
                            m.d.comb += [
                                mst.wdata.ready.eq(write),
                                mst.rdata.valid.eq(~write),
                                mst.rdata.payload.eq(0),
                            ]
                        beat = Mux(
                            write,
                            mst.wdata.valid & mst.wdata.ready,
                            mst.rdata.valid & mst.rdata.ready,
                        )
                        with m.If(beat):
                            m.d.sync += left.eq(left - 1)
                            with m.If(left == 1):
                                m.next = "IDLE"
        return m


class MemRam(wiring.Component):
    """On-chip RAM as a memory-port slave; one beat per cycle, reads and writes.

    Read and write share one address, so the RAM is single-ported: on the iCE40UP it is built
    from SPRAM when the fit plan puts ``host_ram`` there (:mod:`sushi_hw.spram`), elsewhere it
    is block RAM. Read data leaves through a small FIFO with a registered output, so a block
    RAM's clock-to-out (5.6 ns on the ECP5) is not in front of the interconnect and the
    accelerator's buffers.
    """

    def __init__(self, cfg: AccelConfig, ram_bytes: int):
        if ram_bytes <= 0 or ram_bytes % cfg.mem_width:
            raise ValueError(f"RAM size {ram_bytes} must be a positive multiple of mem_width")
        self.cfg, self.ram_bytes = cfg, ram_bytes
        super().__init__({"bus": In(mem_port_signature(cfg))})

    def elaborate(self, platform) -> Module:
        m = Module()
        mw = self.cfg.mem_width
        lmw = mw.bit_length() - 1
        depth = self.ram_bytes // mw
        # not named "mem": SinglePortRam's own array is, and Verilator's lint (VARHIDDEN) objects
        # to an array that shares its name with the instance in the parent module
        m.submodules.sram = mem = SinglePortRam("host_ram", 8 * mw, depth)
        cur = Signal(range(depth))
        left = Signal(17)
        write = Signal()
        pending = Signal()  # a read was issued last cycle: its data is on mem.rdata now
        m.submodules.rq = rq = fifo.SyncFIFOBuffered(width=8 * mw, depth=4)
        m.d.comb += [mem.addr.eq(cur), mem.wdata.eq(self.bus.wdata.payload)]
        m.d.comb += [
            rq.w_en.eq(pending),
            rq.w_data.eq(mem.rdata),
            self.bus.rdata.valid.eq(rq.r_rdy),
            self.bus.rdata.payload.eq(rq.r_data),
            rq.r_en.eq(self.bus.rdata.ready),
        ]
        m.d.comb += self.bus.req.ready.eq((left == 0) & ~pending & ~rq.r_rdy)
        with m.If(self.bus.req.valid & self.bus.req.ready):
            p = self.bus.req.payload
            m.d.sync += [cur.eq(p.addr[lmw:]), left.eq(p.beats), write.eq(p.write)]
        with m.If(write):
            m.d.comb += [
                self.bus.wdata.ready.eq(left != 0),
                mem.we.eq(self.bus.wdata.valid & (left != 0)),
            ]
            with m.If(self.bus.wdata.valid & (left != 0)):
                m.d.sync += [cur.eq(cur + 1), left.eq(left - 1)]
        with m.Else():
            # a read only when the FIFO has room for it and the one in flight
            issue = (left != 0) & (rq.level + pending < rq.depth - 1)
            m.d.comb += mem.en.eq(issue)
            m.d.sync += pending.eq(issue)
            with m.If(issue):
                m.d.sync += [cur.eq(cur + 1), left.eq(left - 1)]
        return m
