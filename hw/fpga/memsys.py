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

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from sushi_hw.build_options import SIMULATION, BuildOptions
from sushi_hw.config import AccelConfig, clog2
from sushi_hw.mem_port import MEM_ADDR_BITS, MEM_BEATS_BITS, mem_port_signature
from sushi_hw.pipeline import CreditedReadQueue, StreamRegister
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
    """``n_masters`` memory-port masters onto a RAM port and a flash port.

    The arbitration is registered: a master's request is offered ``req.ready`` the cycle
    after it appears (lowest-numbered master first). It is taken, decoded and latched in one
    cycle and handed to its
    slave from those flip-flops in the next; the data streams are then switched by registered
    one-hot selects. The interconnect counts no beats: a slave keeps ``req.ready`` low from
    accepting a burst until its last beat has passed (:class:`MemRam` and
    :class:`~sushi_hw.fpga.spi_flash.SPIFlashReader` do), and that ends the burst. A burst to
    nowhere (or a write to the flash) runs as a read burst of the RAM that paces it: its read
    beats are replaced by zeros, or matched one for one with the master's write beats, which
    are dropped.
    """

    def __init__(
        self, cfg: AccelConfig, n_masters: int, ram_bytes: int, opts: BuildOptions = SIMULATION
    ):
        check_ram_bytes(cfg, ram_bytes)
        self.cfg, self.n, self.ram_bytes, self.opts = cfg, n_masters, ram_bytes, opts
        self.flash_base, self.flash_size = flash_window(cfg)
        sig = mem_port_signature(cfg)
        members = {f"m{i}": In(sig) for i in range(n_masters)}
        members.update({"ram": Out(sig), "flash": Out(sig), "bus_error": Out(1)})
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        masters = [getattr(self, f"m{i}") for i in range(self.n)]
        if self.opts.pipeline_regs:
            masters = [self._sliced(m, i, mst) for i, mst in enumerate(masters)]
        ram, flash = self.ram, self.flash
        # addresses at or above mem_bytes are nowhere: only whether any such bit is set matters
        abits = min(MEM_ADDR_BITS, clog2(self.cfg.mem_bytes))
        # the flash window is a power of two aligned to its size: an equality compare of the
        # high address bits decodes it, and its low bits are the flash address
        wbits = self.flash_size.bit_length() - 1
        assert self.flash_size == 1 << wbits and self.flash_base % self.flash_size == 0

        # the RAM slave only needs the address bits inside the RAM (a burst to nowhere reads
        # any address), the flash only those of its window
        rbits = clog2(self.ram_bytes)

        grant = Signal(self.n)  # one-hot, the master being served
        to_flash = Signal()  # else to the RAM
        nowhere = Signal()  # the RAM only paces the burst
        write = Signal()

        def pick(onehot: Value, values: list) -> Value:
            """The value of the master that ``onehot`` selects."""
            v = values[-1]
            for i in reversed(range(self.n - 1)):
                v = Mux(onehot[i], values[i], v)
            return v

        # the arbitration (lowest-numbered requesting master) is registered into ``offer``,
        # and in IDLE only the offered master sees ``req.ready``: a master's ready is a
        # flip-flop, not its own valid through the arbiter (on the iCE40 that loop, issuer ->
        # arbiter -> the weight walker's enables, was the critical path). It costs a cycle
        # per request on the board, where the SPI flash's latency dwarfs it.
        sel = Signal(self.n)
        for i in reversed(range(self.n)):
            with m.If(masters[i].req.valid):
                m.d.comb += sel.eq(1 << i)
        offer = Signal(self.n)
        m.d.sync += offer.eq(sel)
        taken = Signal()
        m.d.comb += taken.eq((offer & Cat(mst.req.valid for mst in masters)).any())

        # the winner's request and its decode are registered as it is granted: the slaves see
        # flip-flops, not the masters' address logic, the arbitration and the decode in series
        # (the master keeps its request up until it is accepted, so the copy stays true)
        reqs = [mst.req.payload for mst in masters]
        w_addr = pick(offer, [q.addr[:abits] for q in reqs])
        w_above = (
            pick(offer, [q.addr[abits:] != 0 for q in reqs])
            if abits < MEM_ADDR_BITS
            else Const(0, 1)
        )
        w_write = pick(offer, [q.write for q in reqs])
        if self.ram_bytes == 1 << rbits:  # the usual case: no magnitude compare
            w_in_ram = ~w_above & (w_addr[rbits:] == 0)
        else:
            w_in_ram = ~w_above & (w_addr < self.ram_bytes)
        w_flash_rd = ~w_above & (w_addr[wbits:] == self.flash_base >> wbits) & ~w_write
        addr, beats = Signal(abits), Signal(MEM_BEATS_BITS)
        req_write, in_ram, flash_rd = Signal(), Signal(), Signal()
        latch = Signal()  # set by the arbitration below in IDLE
        with m.If(latch):
            m.d.sync += [
                addr.eq(w_addr),
                beats.eq(pick(offer, [q.beats for q in reqs])),
                req_write.eq(w_write),
                in_ram.eq(w_in_ram),
                flash_rd.eq(w_flash_rd),
            ]
        req_nowhere = ~in_ram & ~flash_rd
        mw_valid = pick(grant, [mst.wdata.valid for mst in masters])
        mr_ready = pick(grant, [mst.rdata.ready for mst in masters])

        m.d.comb += [
            ram.req.payload.addr.eq(addr[:rbits]),
            ram.req.payload.beats.eq(beats),
            ram.req.payload.write.eq(req_write & in_ram),
            flash.req.payload.addr.eq(addr[:wbits]),
            flash.req.payload.beats.eq(beats),
            ram.wdata.payload.eq(pick(grant, [mst.wdata.payload for mst in masters])),
            ram.wdata.valid.eq(write & ~nowhere & mw_valid),
            ram.rdata.ready.eq(~to_flash & Mux(write, nowhere & mw_valid, mr_ready)),
            flash.rdata.ready.eq(to_flash & mr_ready),
        ]
        s_rvalid = Mux(to_flash, flash.rdata.valid, ram.rdata.valid)
        rpayload = Mux(to_flash, flash.rdata.payload, Mux(nowhere, 0, ram.rdata.payload))
        w_ready = Mux(nowhere, ram.rdata.valid, ram.wdata.ready)
        for i, mst in enumerate(masters):
            m.d.comb += [
                mst.rdata.payload.eq(rpayload),
                mst.rdata.valid.eq(grant[i] & ~write & s_rvalid),
                mst.wdata.ready.eq(grant[i] & write & w_ready),
            ]

        with m.FSM():
            with m.State("IDLE"):
                # the offered request is taken here (its copy is latched): the masters never
                # wait on a slave's ready, which keeps the slaves' state out of their paths
                m.d.comb += latch.eq(1)
                for i, mst in enumerate(masters):
                    m.d.comb += mst.req.ready.eq(offer[i])
                with m.If(taken):
                    m.d.sync += grant.eq(offer)
                    m.next = "REQ"
            with m.State("REQ"):
                slave_ready = Mux(flash_rd, flash.req.ready, ram.req.ready)
                m.d.comb += [ram.req.valid.eq(~flash_rd), flash.req.valid.eq(flash_rd)]
                with m.If(slave_ready):
                    m.d.sync += [
                        to_flash.eq(flash_rd),
                        nowhere.eq(req_nowhere),
                        write.eq(req_write),
                    ]
                    with m.If(req_nowhere):
                        m.d.sync += self.bus_error.eq(1)
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(Mux(to_flash, flash.req.ready, ram.req.ready)):
                    m.next = "IDLE"
        return m

    def _sliced(self, m: Module, i: int, port) -> SimpleNamespace:
        """Master ``i``'s data streams through register slices (ECP5 timing: the master's
        ``rdata.ready`` ran through the interconnect into the RAM's enables): the interconnect
        switches the slices' registered ends. Its request stays direct (already registered)."""
        word = unsigned(8 * self.cfg.mem_width)
        m.submodules[f"m{i}_rslice"] = rs = StreamRegister(word)
        m.submodules[f"m{i}_wslice"] = ws = StreamRegister(word)
        m.d.comb += [
            port.rdata.valid.eq(rs.o.valid),
            port.rdata.payload.eq(rs.o.payload),
            rs.o.ready.eq(port.rdata.ready),
            ws.i.valid.eq(port.wdata.valid),
            ws.i.payload.eq(port.wdata.payload),
            port.wdata.ready.eq(ws.i.ready),
        ]
        return SimpleNamespace(req=port.req, rdata=rs.i, wdata=ws.o)


class MemRam(wiring.Component):
    """On-chip RAM as a memory-port slave; one beat per cycle, reads and writes.

    Read and write share one address, so the RAM is single-ported: on the iCE40UP it is built
    from SPRAM when the fit plan puts ``host_ram`` there (:mod:`sushi_hw.spram`), elsewhere it
    is block RAM. Read data leaves through a registered output, so a block RAM's clock-to-out
    (5.6 ns on the ECP5) is not in front of the interconnect and the accelerator's buffers.
    ``req.ready`` is low from accepting a burst until its last beat has passed.
    """

    def __init__(self, cfg: AccelConfig, ram_bytes: int, opts: BuildOptions = SIMULATION):
        if ram_bytes <= 0 or ram_bytes % cfg.mem_width:
            raise ValueError(f"RAM size {ram_bytes} must be a positive multiple of mem_width")
        self.cfg, self.ram_bytes, self.opts = cfg, ram_bytes, opts
        super().__init__({"bus": In(mem_port_signature(cfg))})

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        mw = self.cfg.mem_width
        lmw = mw.bit_length() - 1
        depth = self.ram_bytes // mw
        # not named "mem": SinglePortRam's own array is, and Verilator's lint (VARHIDDEN) objects
        # to an array that shares its name with the instance in the parent module
        registered = self.opts.pipeline_regs  # the read data registered in the RAM (ECP5)
        m.submodules.sram = mem = SinglePortRam(
            "host_ram", 8 * mw, depth, registered=registered, opts=self.opts
        )
        cur = Signal(range(depth))
        # beats left less two: negative (its top bit, no compare) at the burst's last beat
        left_m2 = Signal(signed(MEM_BEATS_BITS + 1))
        write = Signal()
        busy = Signal()  # beats left != 0, as a register: it gates wdata.ready towards the masters
        m.d.comb += [mem.addr.eq(cur), mem.wdata.eq(bus.wdata.payload)]

        # a read is issued in the cycles ``issue`` says; a request is taken once every beat
        # of the last one has left (``drained``)
        reads = self._registered_reads if registered else self._held_reads
        issue, drained = reads(m, mem, want_read=~write & busy)
        m.d.comb += bus.req.ready.eq(~busy & drained)
        with m.If(bus.req.valid & bus.req.ready):
            p = bus.req.payload
            m.d.sync += [
                cur.eq(p.addr[lmw:]),
                left_m2.eq(p.beats - 2),
                busy.eq(p.beats != 0),
                write.eq(p.write),
            ]
        we = write & busy & bus.wdata.valid
        m.d.comb += [bus.wdata.ready.eq(write & busy), mem.we.eq(we), mem.en.eq(issue)]
        with m.If(we | issue):
            m.d.sync += [cur.eq(cur + 1), left_m2.eq(left_m2 - 1)]
            with m.If(left_m2[-1]):
                m.d.sync += busy.eq(0)
        return m

    def _held_reads(self, m: Module, mem, want_read: Value) -> tuple[Value, Value]:
        """Read pipeline, oldest first: the output register (o), a skid register (s) and the
        RAM's own output (h, held while the RAM is not enabled). A read is issued unless all
        three are full, which decides on registers only and still streams a beat per cycle."""
        bus = self.bus
        h_valid, s_valid, o_valid = Signal(), Signal(), Signal()
        s_data, o_data = Signal.like(mem.rdata), Signal.like(mem.rdata)
        m.d.comb += [bus.rdata.valid.eq(o_valid), bus.rdata.payload.eq(o_data)]
        issue = want_read & ~(h_valid & s_valid & o_valid)
        o_free = ~o_valid | bus.rdata.ready
        with m.If(o_free):
            m.d.sync += [o_valid.eq(s_valid | h_valid), o_data.eq(Mux(s_valid, s_data, mem.rdata))]
        h_to_s = h_valid & Mux(o_free, s_valid, ~s_valid)
        with m.If(h_to_s):
            m.d.sync += s_data.eq(mem.rdata)
        with m.If(o_free | ~s_valid):
            m.d.sync += s_valid.eq(h_to_s)
        m.d.sync += h_valid.eq(issue | (h_valid & ~o_free & s_valid))
        return issue, ~h_valid & ~s_valid & ~o_valid

    def _registered_reads(self, m: Module, mem, want_read: Value) -> tuple[Value, Value]:
        """The read path with the pipeline registers (ECP5): the RAM's read data is registered
        right at the RAM, in the block RAMs' output registers (a wide RAM's block RAMs are
        spread out, and their clock-to-out and routing alone took 10 ns), then goes into a
        queue that the bus reads (:class:`~sushi_hw.pipeline.CreditedReadQueue`: reads are
        issued against credits, so the decision is on registers and a beat still streams
        every cycle)."""
        bus = self.bus
        # 8 entries cover the two reads in flight and the queue's own latency
        m.submodules.rq = rq = CreditedReadQueue(len(mem.rdata), depth=8, latency=2)
        issue = want_read & rq.room
        m.d.comb += [rq.issue.eq(issue), rq.data.eq(mem.rdata)]
        m.d.comb += [
            bus.rdata.valid.eq(rq.o.valid),
            bus.rdata.payload.eq(rq.o.payload),
            rq.o.ready.eq(bus.rdata.ready),
        ]
        return issue, rq.drained
