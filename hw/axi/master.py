"""AXI4 master adapter: SushiAccel's memory port (:mod:`sushi_hw.mem_port`) onto an AXI4 bus.

* **Width.** The AXI data width ``data_bytes`` (8, 16, 32, ... bytes: 64/128/256-bit buses)
  is independent of the core's beat ``cfg.mem_width``. Narrower core beats are packed into
  AXI beats (up-sizing: a request that starts inside an AXI beat starts at its lane, and write
  strobes cover exactly the request's bytes); wider core beats are split into several AXI beats
  (down-sizing). Equal widths pass through.
* **Bursts.** Each request becomes INCR bursts of full-width beats (``AxSIZE`` = the bus
  width) covering exactly its bytes: at most 256 beats and never across a 4 KiB boundary.
* **Outstanding reads.** Read requests are accepted while the descriptor queue (``reads``
  deep) has room, and their bursts go out back to back: the latency of one overlaps the
  transfer of the next. All IDs are 0, so responses return in order.
* **Ordering.** A read request waits until every write burst before it has its write response
  (read-after-write through the interconnect); writes need no wait.
* **Errors.** A read or write response other than OKAY sets ``error`` (sticky, with the
  response, the direction and the accelerator address of the request), which halts the core
  with BUS_ERROR at its next command boundary. From then on every read returns zeros (the
  failing command ends on them) and no new transfer reaches the bus, until ``clear`` (the
  doorbell) with the adapter ``idle``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from ..config import AccelConfig
from ..mem_port import MEM_ADDR_BITS, MEM_BEATS_BITS, mem_port_signature

AXI_ADDR_BITS = 32
AXI_ID_BITS = 1
MAX_BURST = 256
PAGE = 4096
RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0, 1, 2, 3
#: AxCACHE: normal non-cacheable bufferable (what Xilinx's AXI masters use)
AXCACHE = 0b0011


def _log2(x: int) -> int:
    return x.bit_length() - 1


def axi4_signature(data_bytes: int, addr_bits: int = AXI_ADDR_BITS) -> wiring.Signature:
    """The master's side of an AXI4 bus (signal names as in the AXI specification)."""
    d, ab, i = 8 * data_bytes, addr_bits, AXI_ID_BITS

    def addr_channel(p: str) -> dict:
        return {
            f"{p}id": Out(i),
            f"{p}addr": Out(ab),
            f"{p}len": Out(8),
            f"{p}size": Out(3),
            f"{p}burst": Out(2),
            f"{p}lock": Out(1),
            f"{p}cache": Out(4),
            f"{p}prot": Out(3),
            f"{p}qos": Out(4),
            f"{p}valid": Out(1),
            f"{p}ready": In(1),
        }

    return wiring.Signature(
        {
            **addr_channel("aw"),
            "wdata": Out(d),
            "wstrb": Out(data_bytes),
            "wlast": Out(1),
            "wvalid": Out(1),
            "wready": In(1),
            "bid": In(i),
            "bresp": In(2),
            "bvalid": In(1),
            "bready": Out(1),
            **addr_channel("ar"),
            "rid": In(i),
            "rdata": In(d),
            "rresp": In(2),
            "rlast": In(1),
            "rvalid": In(1),
            "rready": Out(1),
        }
    )


def default_data_bytes(cfg: AccelConfig) -> int:
    """The AXI width a ``sushi_axi`` top gets unless told: the core's beat, within 64..256
    bits (tiny's 16-bit beats go out 4 to a 64-bit beat; zcu104's 512-bit beats as two
    256-bit beats)."""
    return min(32, max(8, cfg.mem_width))


class Axi4Master(wiring.Component):
    """``mem``: the memory's side of the core's port; ``axi``: the AXI4 master.

    ``base`` is added to every address (the AXI address of accelerator address 0). ``clear``
    (one cycle) clears ``error``. ``idle``: no request, burst or response outstanding.
    """

    def __init__(self, cfg: AccelConfig, data_bytes: int | None = None, reads: int = 8):
        data_bytes = default_data_bytes(cfg) if data_bytes is None else data_bytes
        if data_bytes < 1 or data_bytes & (data_bytes - 1) or data_bytes > 128:
            raise ValueError(f"AXI data width {data_bytes} B: must be a power of two <= 128 B")
        if reads < 3:  # a buffered FIFO of depth 2 has a zero-width address (lint)
            raise ValueError(f"reads = {reads}: at least 3 outstanding read requests")
        self.cfg, self.data_bytes, self.reads = cfg, data_bytes, reads
        super().__init__(
            {
                "mem": In(mem_port_signature(cfg)),
                "axi": Out(axi4_signature(data_bytes)),
                "base": In(AXI_ADDR_BITS),
                "clear": In(1),
                "idle": Out(1),
                "error": Out(1),
                "error_resp": Out(2),
                "error_write": Out(1),
                "error_addr": Out(MEM_ADDR_BITS),
            }
        )

    def elaborate(self, platform) -> Module:  # noqa: C901 - one datapath, read top to bottom
        m = Module()
        cfg, A = self.cfg, self.data_bytes
        W = cfg.mem_width
        lg_a, lg_w = _log2(A), _log2(W)
        up = max(1, A // W)  # core beats per AXI beat
        down = max(1, W // A)  # AXI beats per core beat
        lane_bits = max(1, _log2(up))
        axi, mem = self.axi, self.mem

        desc_layout = data.StructLayout(
            {
                "lane0": unsigned(lane_bits),
                "beats": unsigned(MEM_BEATS_BITS),
                "local": 1,  # served without the bus (after an error)
                "addr": unsigned(MEM_ADDR_BITS),
            }
        )
        m.submodules.rdesc = rdesc = fifo.SyncFIFOBuffered(width=desc_layout.size, depth=self.reads)
        m.submodules.wdesc = wdesc = fifo.SyncFIFOBuffered(width=desc_layout.size, depth=4)
        # write bursts: AW (address, length) and, for WLAST, the lengths again
        m.submodules.awq = awq = fifo.SyncFIFOBuffered(width=AXI_ADDR_BITS + 8, depth=4)
        m.submodules.wlen = wlen = fifo.SyncFIFOBuffered(width=8, depth=4)

        err = Signal()
        err_resp = Signal(2)
        err_write = Signal()
        err_addr = Signal(MEM_ADDR_BITS)
        m.d.comb += [
            self.error.eq(err),
            self.error_resp.eq(err_resp),
            self.error_write.eq(err_write),
            self.error_addr.eq(err_addr),
        ]

        # ---- the splitter: one request at a time into bursts ----------------------------
        active = Signal()
        s_addr = Signal(AXI_ADDR_BITS)
        s_left = Signal(32)  # AXI beats still to issue
        s_write = Signal()
        wb_out = Signal(range(1 << 12))  # write bursts issued without their response yet

        req = mem.req.payload
        byte_addr = Signal(AXI_ADDR_BITS)
        m.d.comb += byte_addr.eq((self.base & ~(PAGE - 1)) + req.addr)
        n_axi = Signal(32)
        if up > 1:
            first = byte_addr >> lg_a
            last = (byte_addr + (req.beats << lg_w) - 1)[:33] >> lg_a
            m.d.comb += n_axi.eq(last - first + 1)
            lane0 = byte_addr[lg_w:lg_a]
        else:
            m.d.comb += n_axi.eq(req.beats << _log2(down))
            lane0 = Const(0, lane_bits)

        new = Signal(desc_layout)
        m.d.comb += [
            new.lane0.eq(lane0),
            new.beats.eq(req.beats),
            new.local.eq(err),
            new.addr.eq(req.addr),
            rdesc.w_data.eq(new.as_value()),
            wdesc.w_data.eq(new.as_value()),
        ]
        read_ok = rdesc.w_rdy & (err | (wb_out == 0))
        m.d.comb += mem.req.ready.eq(~active & Mux(req.write, wdesc.w_rdy, read_ok))
        accept = mem.req.valid & mem.req.ready
        with m.If(accept):
            m.d.comb += [rdesc.w_en.eq(~req.write), wdesc.w_en.eq(req.write)]
            with m.If(~err):
                m.d.sync += [
                    active.eq(1),
                    s_addr.eq(byte_addr & ~(A - 1)),
                    s_left.eq(n_axi),
                    s_write.eq(req.write),
                ]

        to_page = Signal(range(PAGE // A + 1))
        m.d.comb += to_page.eq((PAGE - s_addr[:12]) >> lg_a)
        blen = Signal(range(MAX_BURST + 1))  # this burst's beats
        cap = min(MAX_BURST, PAGE // A)
        capped = Mux(s_left < cap, s_left, cap)
        m.d.comb += blen.eq(Mux(to_page < capped, to_page, capped))
        issue = Signal()
        m.d.comb += [
            axi.arid.eq(0),
            axi.araddr.eq(s_addr),
            axi.arlen.eq(blen - 1),
            axi.arsize.eq(lg_a),
            axi.arburst.eq(1),  # INCR
            axi.arcache.eq(AXCACHE),
            axi.arvalid.eq(active & ~s_write),
            awq.w_data.eq(Cat(s_addr, (blen - 1)[:8])),
            wlen.w_data.eq(blen - 1),
        ]
        with m.If(active & s_write):
            m.d.comb += issue.eq(awq.w_rdy & wlen.w_rdy)
            m.d.comb += [awq.w_en.eq(issue), wlen.w_en.eq(issue)]
        with m.Elif(active):
            m.d.comb += issue.eq(axi.arready)
        with m.If(issue):
            m.d.sync += [s_addr.eq(s_addr + (blen << lg_a)), s_left.eq(s_left - blen)]
            with m.If(s_left == blen):
                m.d.sync += active.eq(0)

        m.d.comb += [
            axi.awid.eq(0),
            axi.awaddr.eq(awq.r_data[:AXI_ADDR_BITS]),
            axi.awlen.eq(awq.r_data[AXI_ADDR_BITS:]),
            axi.awsize.eq(lg_a),
            axi.awburst.eq(1),
            axi.awcache.eq(AXCACHE),
            axi.awvalid.eq(awq.r_rdy),
            awq.r_en.eq(axi.awready),
        ]

        # ---- errors -------------------------------------------------------------------------
        rd = Signal(desc_layout)
        wd = Signal(desc_layout)
        m.d.comb += [rd.eq(rdesc.r_data), wd.eq(wdesc.r_data)]
        r_beat = axi.rvalid & axi.rready
        b_beat = axi.bvalid & axi.bready
        m.d.comb += axi.bready.eq(1)
        w_issued = awq.w_en & awq.w_rdy
        with m.If(w_issued & ~b_beat):
            m.d.sync += wb_out.eq(wb_out + 1)
        with m.Elif(b_beat & ~w_issued):
            m.d.sync += wb_out.eq(wb_out - 1)
        last_wdesc_addr = Signal(MEM_ADDR_BITS)  # the request of the oldest write burst
        with m.If(wdesc.r_rdy):
            m.d.sync += last_wdesc_addr.eq(wd.addr)
        with m.If(self.clear):
            m.d.sync += err.eq(0)
        with m.Elif(~err & r_beat & (axi.rresp[1] == 1)):
            m.d.sync += [
                err.eq(1),
                err_resp.eq(axi.rresp),
                err_write.eq(0),
                err_addr.eq(rd.addr),
            ]
        with m.Elif(~err & b_beat & (axi.bresp[1] == 1)):
            m.d.sync += [
                err.eq(1),
                err_resp.eq(axi.bresp),
                err_write.eq(1),
                err_addr.eq(last_wdesc_addr),
            ]

        # ---- read data: AXI beats into core beats ------------------------------------------
        r_cnt = Signal(MEM_BEATS_BITS)  # core beats of the head request delivered
        r_last = Signal()
        m.d.comb += r_last.eq(r_cnt == rd.beats - 1)
        r_take = mem.rdata.valid & mem.rdata.ready
        poison = err | (axi.rresp[1] == 1)
        if up > 1 or down == 1:
            lane_reg = Signal(lane_bits)
            lane = Signal(lane_bits)
            m.d.comb += lane.eq(Mux(r_cnt == 0, rd.lane0, lane_reg))
            word = axi.rdata.word_select(lane, 8 * W) if up > 1 else axi.rdata
            m.d.comb += [
                mem.rdata.valid.eq(rdesc.r_rdy & (rd.local | axi.rvalid)),
                mem.rdata.payload.eq(Mux(rd.local | poison, 0, word)),
                axi.rready.eq(
                    rdesc.r_rdy
                    & ~rd.local
                    & mem.rdata.ready
                    & ((lane == up - 1) | r_last if up > 1 else 1)
                ),
            ]
            with m.If(r_take):
                m.d.sync += lane_reg.eq(lane + 1)
        else:
            part = Signal(range(down))
            buf = Signal(8 * A * (down - 1))
            full = Signal()
            m.d.comb += full.eq(part == down - 1)
            m.d.comb += [
                mem.rdata.valid.eq(rdesc.r_rdy & (rd.local | (axi.rvalid & full))),
                mem.rdata.payload.eq(Mux(rd.local | poison, 0, Cat(buf, axi.rdata))),
                axi.rready.eq(rdesc.r_rdy & ~rd.local & (~full | mem.rdata.ready)),
            ]
            with m.If(r_beat):
                m.d.sync += part.eq(Mux(full, 0, part + 1))
                with m.If(~full):
                    m.d.sync += buf.word_select(part, 8 * A).eq(axi.rdata)
        with m.If(r_take):
            m.d.sync += r_cnt.eq(Mux(r_last, 0, r_cnt + 1))
            m.d.comb += rdesc.r_en.eq(r_last)

        # ---- write data: core beats into AXI beats, WLAST per burst ------------------------
        w_cnt = Signal(MEM_BEATS_BITS)
        w_last = Signal()
        m.d.comb += w_last.eq(w_cnt == wd.beats - 1)
        w_take = mem.wdata.valid & mem.wdata.ready
        wb_cnt = Signal(8)  # beat within the current burst
        m.d.comb += axi.wlast.eq(wb_cnt == wlen.r_data)
        w_beat = axi.wvalid & axi.wready
        with m.If(w_beat):
            m.d.sync += wb_cnt.eq(Mux(axi.wlast, 0, wb_cnt + 1))
            m.d.comb += wlen.r_en.eq(axi.wlast)
        if up > 1 or down == 1:
            wlane_reg = Signal(lane_bits)
            wlane = Signal(lane_bits)
            m.d.comb += wlane.eq(Mux(w_cnt == 0, wd.lane0, wlane_reg))
            flush = Signal()
            m.d.comb += flush.eq((wlane == up - 1) | w_last if up > 1 else 1)
            wbuf = Signal(8 * A)
            wacc = Signal(up)  # lanes of wbuf filled
            m.d.comb += axi.wdata.eq(wbuf)
            if up > 1:
                m.d.comb += axi.wdata.word_select(wlane, 8 * W).eq(mem.wdata.payload)
                lanes = Signal(up)
                m.d.comb += lanes.eq(wacc | (1 << wlane))
                m.d.comb += axi.wstrb.eq(Cat(*(lanes[i].replicate(W) for i in range(up))))
            else:
                m.d.comb += [axi.wdata.eq(mem.wdata.payload), axi.wstrb.eq((1 << A) - 1)]
            m.d.comb += [
                axi.wvalid.eq(wdesc.r_rdy & ~wd.local & mem.wdata.valid & flush & wlen.r_rdy),
                mem.wdata.ready.eq(wdesc.r_rdy & (wd.local | ~flush | (axi.wready & wlen.r_rdy))),
            ]
            with m.If(w_take):
                m.d.sync += wlane_reg.eq(wlane + 1)
                if up > 1:
                    with m.If(flush):
                        m.d.sync += wacc.eq(0)
                    with m.Else():
                        m.d.sync += [
                            wacc.eq(lanes),
                            wbuf.word_select(wlane, 8 * W).eq(mem.wdata.payload),
                        ]
        else:
            wpart = Signal(range(down))
            wfull = Signal()
            m.d.comb += wfull.eq(wpart == down - 1)
            m.d.comb += [
                axi.wdata.eq(mem.wdata.payload.word_select(wpart, 8 * A)),
                axi.wstrb.eq((1 << A) - 1),
                axi.wvalid.eq(wdesc.r_rdy & ~wd.local & mem.wdata.valid & wlen.r_rdy),
                mem.wdata.ready.eq(wdesc.r_rdy & (wd.local | (axi.wready & wlen.r_rdy & wfull))),
            ]
            with m.If(w_beat):
                m.d.sync += wpart.eq(Mux(wfull, 0, wpart + 1))
        with m.If(w_take):
            m.d.sync += w_cnt.eq(Mux(w_last, 0, w_cnt + 1))
            m.d.comb += wdesc.r_en.eq(w_last)

        m.d.comb += self.idle.eq(~active & ~rdesc.r_rdy & ~wdesc.r_rdy & ~awq.r_rdy & (wb_out == 0))
        return m
