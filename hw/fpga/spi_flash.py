"""SPI flash as the read side of the memory port (weights live in the board's flash).

A read burst becomes one FAST READ (0x0B, 24-bit address, 8 dummy clocks) that streams
``beats * mem_width`` bytes, packed little-endian into beats (the byte at the lower address in
the low bits). SCLK is ``clk / (2 * half_period)``, mode 0; when the accelerator does not take
a beat the clock pauses, which SPI flash allows. Write bursts are consumed and dropped and set
``write_error``: the flash is programmed with the board's programmer (docs/fpga.md).

After reset the controller sends RELEASE POWER-DOWN (0xAB) and waits ``wake_cycles`` (tRES1,
3 us on common parts) before it accepts requests.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from sushi_hw.config import AccelConfig
from sushi_hw.mem_port import MEM_BEATS_BITS, mem_port_signature

from .memsys import flash_window

CMD_FAST_READ = 0x0B
CMD_RELEASE_PD = 0xAB


class SPIFlashReader(wiring.Component):
    def __init__(
        self,
        cfg: AccelConfig,
        *,
        flash_offset: int = 0,
        half_period: int = 1,
        wake_cycles: int = 100,
    ):
        if half_period < 1:
            raise ValueError("half_period must be >= 1 cycle")
        if not 0 <= flash_offset < (1 << 24):
            raise ValueError("flash_offset must be a 24-bit byte offset")
        self.cfg = cfg
        self.flash_offset, self.half, self.wake_cycles = flash_offset, half_period, wake_cycles
        super().__init__(
            {
                "bus": In(mem_port_signature(cfg)),
                "sclk": Out(1),
                "cs_n": Out(1, init=1),
                "copi": Out(1),
                "cipo": In(1),
                "write_error": Out(1),
                "ready": Out(1),  # woken up, accepting requests
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        mw = self.cfg.mem_width
        bus = self.bus
        # bus addresses are offsets into the flash window (the interconnect passes only those)
        wbits = flash_window(self.cfg)[1].bit_length() - 1

        # The datapath is driven by these strobes from the FSM, so that each register has one
        # load value and an enable rather than a mux per state.
        load = Signal()  # load shift_out with a command and its address
        wake = Signal()  # with load: the command is RELEASE POWER-DOWN, else FAST READ
        start = Signal()  # begin the loaded command: CS low, restart SCLK
        run_clk = Signal()  # let SCLK run
        cnt_clr = Signal()
        cnt_inc = Signal()
        cs_off = Signal()

        # SCLK: toggles every half period while run_clk
        if self.half > 1:
            half = Signal(range(self.half))
            tick = run_clk & (half == self.half - 1)
            with m.If(start | tick):
                m.d.sync += half.eq(0)
            with m.Elif(run_clk):
                m.d.sync += half.eq(half + 1)
        else:
            tick = run_clk
        rise, fall = tick & ~self.sclk, tick & self.sclk
        with m.If(start):
            m.d.sync += self.sclk.eq(0)
        with m.Elif(tick):
            m.d.sync += self.sclk.eq(~self.sclk)
        with m.If(start):
            m.d.sync += self.cs_n.eq(0)
        with m.Elif(cs_off):
            m.d.sync += self.cs_n.eq(1)

        # command and address, MSB first, shifted on falling edges; zeros for the dummy clocks
        shift_out = Signal(32)
        m.d.comb += self.copi.eq(shift_out[-1])
        faddr = Signal(24)
        m.d.comb += faddr.eq(self._flash_addr(bus.req.payload.addr, wbits))
        with m.If(load):
            m.d.sync += shift_out.eq(Cat(faddr, Mux(wake, CMD_RELEASE_PD, CMD_FAST_READ)))
        with m.Elif(fall):
            m.d.sync += shift_out.eq(shift_out << 1)

        # One up-counter for the bits of a phase and the cycles of a wait, never both at once:
        # each phase starts it at 0 (a synchronous reset, free in the flip-flop) and ends at
        # its own count n, the first value with all of n's one bits set (no full compare).
        cnt = Signal(range(max(41, 8 * mw + 1, self.wake_cycles + 1)))
        with m.If(cnt_clr):
            m.d.sync += cnt.eq(0)
        with m.Elif(cnt_inc):
            m.d.sync += cnt.eq(cnt + 1)

        def reached(n: int) -> Value:
            return Cat(cnt[i] for i in range(n.bit_length()) if n >> i & 1).all()

        left = Signal(MEM_BEATS_BITS)  # beats of the burst still to go
        left_dec = Signal()
        last = left == 1
        req_fire = bus.req.valid & bus.req.ready
        # what the next state depends on is registered as the request is taken (ACCEPT
        # decides on these): the request's decode and beat count then reach neither SCLK nor
        # CS, which sat behind them (an iCE40 critical path); a burst costs one cycle more
        req_write, req_empty = Signal(), Signal()
        with m.If(req_fire):
            m.d.sync += [
                left.eq(bus.req.payload.beats),
                req_write.eq(bus.req.payload.write),
                req_empty.eq(bus.req.payload.beats == 0),
            ]
        with m.Elif(left_dec):
            m.d.sync += left.eq(left - 1)

        # Received bits go down one shift chain, ordered so that after 8*mw bits each byte
        # (MSB first on the wire) sits little-endian in the beat: no byte register, no muxes.
        rx = Signal(8 * mw, reset_less=True)  # data: valid is ``rvalid``
        order = [8 * (k // 8) + 7 - k % 8 for k in range(8 * mw)]  # bit k of the wire
        chain = [rx[order[k]] for k in reversed(range(8 * mw))]  # chain[0] takes cipo
        m.d.comb += bus.rdata.payload.eq(rx)
        # the beat's valid and its acceptance are flip-flops: the master's ready only sets
        # ``taken``, and the next cycle clears the bit count and moves on, so nothing here (the
        # clock, the counters, the FSM) waits on the master's logic in the same cycle
        rvalid, taken = Signal(), Signal()
        m.d.comb += bus.rdata.valid.eq(rvalid)
        m.d.sync += taken.eq(rvalid & bus.rdata.ready)
        with m.If(rvalid & bus.rdata.ready):
            m.d.sync += rvalid.eq(0)

        with m.FSM():
            with m.State("RESET"):
                m.d.comb += [load.eq(1), start.eq(1), wake.eq(1), cnt_clr.eq(1)]
                m.next = "WAKE_SEND"
            with m.State("WAKE_SEND"):
                m.d.comb += [run_clk.eq(1), cnt_inc.eq(rise)]
                with m.If(fall & reached(8)):
                    m.d.comb += [cs_off.eq(1), cnt_clr.eq(1)]
                    m.next = "WAKE_WAIT"
            with m.State("WAKE_WAIT"):
                m.d.comb += cnt_inc.eq(1)
                with m.If(reached(self.wake_cycles)):
                    m.next = "IDLE"
            with m.State("IDLE"):
                # the FAST READ and its address are loaded from the request as it is taken
                m.d.comb += [self.ready.eq(1), bus.req.ready.eq(1), cnt_clr.eq(1), load.eq(1)]
                with m.If(bus.req.valid):
                    m.next = "ACCEPT"
            with m.State("ACCEPT"):
                m.d.comb += cnt_clr.eq(1)
                with m.If(req_write):
                    m.d.sync += self.write_error.eq(1)
                    m.next = "DROP"
                with m.Elif(req_empty):
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += start.eq(1)
                    m.next = "SEND"
            with m.State("DROP"):
                m.d.comb += [bus.wdata.ready.eq(1), left_dec.eq(bus.wdata.valid)]
                with m.If(bus.wdata.valid & last):
                    m.next = "IDLE"
            with m.State("SEND"):  # command, address, 8 dummy clocks
                m.d.comb += [run_clk.eq(1), cnt_inc.eq(rise)]
                with m.If(fall & reached(40)):
                    m.d.comb += cnt_clr.eq(1)
                    m.next = "RECV"
            with m.State("RECV"):
                with m.If(taken):
                    m.d.comb += [left_dec.eq(1), cnt_clr.eq(1)]
                    with m.If(last):
                        m.d.comb += cs_off.eq(1)
                        m.next = "GAP"
                with m.Elif(reached(8 * mw) & ~self.sclk):
                    # a whole word and SCLK low: hand it over; the clock pauses until it is taken
                    with m.If(~rvalid):
                        m.d.sync += rvalid.eq(1)
                with m.Else():
                    m.d.comb += [run_clk.eq(1), cnt_inc.eq(rise)]
                    with m.If(rise):
                        m.d.sync += chain[0].eq(self.cipo)
                        m.d.sync += [chain[k + 1].eq(chain[k]) for k in range(len(chain) - 1)]
            with m.State("GAP"):  # CS high time between commands
                m.d.comb += cnt_inc.eq(1)
                with m.If(reached(3)):
                    m.next = "IDLE"
        return m

    def _flash_addr(self, addr: Value, wbits: int) -> Value:
        """24-bit flash address of window offset ``addr[:wbits]``: ``flash_offset`` added with
        a carry chain only above its lowest set bit."""
        off = self.flash_offset
        low = min(wbits, (off & -off).bit_length() - 1 if off else 24)
        if low >= wbits:
            return addr[:wbits] | off
        return Cat(addr[:low], (addr[low:wbits] + (off >> low))[: 24 - low])
