"""``sushi_axi``: SushiAccel as a drop-in IP, an AXI4 memory master and an AXI4-Lite slave.

SushiAccel is used unchanged: its memory port goes through :class:`~.master.Axi4Master`, its
control port (:class:`sushi_hw.control.ControlSignature`) is driven by the registers of
:mod:`.regs` (:class:`AxiLiteSlave` decodes them). Verilog ports: ``clk``, ``rst`` (active high:
invert an ``aresetn``), ``irq``, the master ``m_axi_*`` and the slave ``s_axil_*``, named as in
the AXI specification so that SoC tools infer both interfaces. docs/axi.md describes it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import isa
from ..accel import SushiAccel
from ..build_options import SIMULATION, BuildOptions
from ..config import AccelConfig
from ..control import ControlSignature
from . import regs
from .master import Axi4Master, axi4_signature, default_data_bytes


def axil_signature(addr_bits: int = regs.ADDR_BITS) -> wiring.Signature:
    """The slave's side of an AXI4-Lite bus with 32-bit data (``In`` = from the master)."""
    return wiring.Signature(
        {
            "awaddr": In(addr_bits),
            "awprot": In(3),
            "awvalid": In(1),
            "awready": Out(1),
            "wdata": In(32),
            "wstrb": In(4),
            "wvalid": In(1),
            "wready": Out(1),
            "bresp": Out(2),
            "bvalid": Out(1),
            "bready": In(1),
            "araddr": In(addr_bits),
            "arprot": In(3),
            "arvalid": In(1),
            "arready": Out(1),
            "rdata": Out(32),
            "rresp": Out(2),
            "rvalid": Out(1),
            "rready": In(1),
        }
    )


class AxiLiteSlave(wiring.Component):
    """AXI4-Lite protocol to a register interface: ``wr`` for one cycle with
    ``wr_addr``/``wr_data``/``wr_strb`` per write; per read, ``rd`` for one cycle with
    ``rd_addr``, then the answer is taken from ``rd_data`` when ``rd_ack`` is high (the
    register file may take several cycles, e.g. for a counter). One transaction at a time
    per direction; every response is OKAY."""

    def __init__(self, addr_bits: int = regs.ADDR_BITS):
        self.addr_bits = addr_bits
        super().__init__(
            {
                "bus": Out(axil_signature(addr_bits)),
                "wr": Out(1),
                "wr_addr": Out(addr_bits),
                "wr_data": Out(32),
                "wr_strb": Out(4),
                "rd": Out(1),
                "rd_addr": Out(addr_bits),
                "rd_ack": In(1),
                "rd_data": In(32),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        b = self.bus
        # writes: address and data together, then the response
        take_w = b.awvalid & b.wvalid & ~b.bvalid
        m.d.comb += [
            b.awready.eq(take_w),
            b.wready.eq(take_w),
            b.bresp.eq(0),
            self.wr.eq(take_w),
            self.wr_addr.eq(b.awaddr),
            self.wr_data.eq(b.wdata),
            self.wr_strb.eq(b.wstrb),
        ]
        with m.If(take_w):
            m.d.sync += b.bvalid.eq(1)
        with m.Elif(b.bready):
            m.d.sync += b.bvalid.eq(0)
        # reads: one outstanding; the register file answers when it can
        pending = Signal()
        addr = Signal(self.addr_bits)
        take_r = b.arvalid & ~pending & ~b.rvalid
        m.d.comb += [b.arready.eq(take_r), b.rresp.eq(0), self.rd_addr.eq(addr)]
        with m.If(take_r):
            m.d.sync += [pending.eq(1), addr.eq(b.araddr)]
        m.d.comb += self.rd.eq(take_r)
        with m.If(take_r):
            m.d.comb += self.rd_addr.eq(b.araddr)
        with m.If(pending & self.rd_ack):
            m.d.sync += [pending.eq(0), b.rvalid.eq(1), b.rdata.eq(self.rd_data)]
        with m.Elif(b.rvalid & b.rready):
            m.d.sync += b.rvalid.eq(0)
        return m


#: cycles from selecting a counter to its value (``ControlSignature``: two cycles)
CTR_LATENCY = 2


def _flat(prefix: str, sig: wiring.Signature) -> dict:
    return {f"{prefix}{name}": member for name, member in sig.members.items()}


class SushiAxi(wiring.Component):
    """SushiAccel with ``m_axi_*`` (AXI4 master, ``data_bytes`` wide) and ``s_axil_*``
    (AXI4-Lite slave, the registers of :mod:`.regs`) and a level ``irq``."""

    def __init__(
        self,
        cfg: AccelConfig,
        opts: BuildOptions = SIMULATION,
        data_bytes: int | None = None,
        reads: int = 8,
    ):
        self.cfg, self.opts = cfg, opts
        self.data_bytes = default_data_bytes(cfg) if data_bytes is None else data_bytes
        self.reads = reads
        self._axi_sig = axi4_signature(self.data_bytes)
        self._axil_sig = axil_signature()
        super().__init__(
            {
                **_flat("m_axi_", self._axi_sig),
                **_flat("s_axil_", self._axil_sig),
                "irq": Out(1),
            }
        )

    def _bridge(self, m: Module, prefix: str, sig: wiring.Signature, inner) -> None:
        """Connect the flat ports ``prefix*`` to the interface object ``inner`` (same
        signature, seen from the same side)."""
        for name, member in sig.members.items():
            outer = getattr(self, f"{prefix}{name}")
            if member.flow == Out:
                m.d.comb += outer.eq(getattr(inner, name))
            else:
                m.d.comb += getattr(inner, name).eq(outer)

    def elaborate(self, platform) -> Module:  # noqa: C901 - the register file, one place
        m = Module()
        cfg = self.cfg
        m.submodules.accel = accel = SushiAccel(cfg, self.opts)
        m.submodules.master = master = Axi4Master(cfg, self.data_bytes, self.reads)
        m.submodules.lite = lite = AxiLiteSlave()
        wiring.connect(m, accel.mem, master.mem)
        # an AXI error response halts the core with BUS_ERROR at its next command boundary
        m.d.comb += accel.bus_error.eq(master.error)
        self._bridge(m, "m_axi_", self._axi_sig, master.axi)
        self._bridge(m, "s_axil_", self._axil_sig, lite.bus)

        ctrl = ControlSignature().create()  # the host's side, driven by the registers
        wiring.connect(m, ctrl, accel.ctrl)

        prog_addr = Signal(32)
        irq_en = Signal()
        mem_base = Signal(32)
        pending = Signal()  # a doorbell waits for the core and the master to be idle
        m.d.comb += [ctrl.prog_addr.eq(prog_addr), master.base.eq(mem_base)]

        fire = pending & ~ctrl.busy & master.idle
        m.d.comb += [ctrl.doorbell.eq(fire), master.clear.eq(fire)]
        with m.If(fire):
            m.d.sync += pending.eq(0)

        # the two cycles after the doorbell count as busy, whenever the core raises its busy:
        # the previous program's done/error must not show in between
        launched = Signal(2)
        m.d.sync += launched.eq(Cat(fire, launched[0]))
        busy = Signal()
        done = Signal()
        error = Signal()
        m.d.comb += [
            busy.eq(ctrl.busy | pending | ~master.idle | launched.any()),
            done.eq(ctrl.done & ~master.error & ~busy),
            error.eq((ctrl.error | master.error) & ~busy),
            self.irq.eq(irq_en & (done | error)),
        ]
        status = Signal(32)
        f = {fl.name: fl for fl in regs.STATUS_FIELDS}
        values = {
            "busy": busy,
            "done": done,
            "error": error,
            "axi_error": master.error,
            "code": ctrl.error_code,
            "axi_resp": master.error_resp,
            "axi_write": master.error_write,
        }
        for name, v in values.items():
            m.d.comb += status[f[name].lsb : f[name].lsb + f[name].width].eq(v)

        # ---- writes ----------------------------------------------------------------------
        with m.If(lite.wr):
            with m.Switch(lite.wr_addr[2:]):
                with m.Case(regs.offset("CONTROL") >> 2):
                    with m.If(lite.wr_data[0]):
                        m.d.sync += pending.eq(1)
                with m.Case(regs.offset("PROG_ADDR") >> 2):
                    m.d.sync += _strobed(prog_addr, lite.wr_data, lite.wr_strb)
                with m.Case(regs.offset("IRQ_ENABLE") >> 2):
                    with m.If(lite.wr_strb[0]):
                        m.d.sync += irq_en.eq(lite.wr_data[0])
                with m.Case(regs.offset("MEM_BASE") >> 2):
                    m.d.sync += _strobed(mem_base, lite.wr_data, lite.wr_strb)

        # ---- reads: constants and live registers in one cycle, counters in CTR_LATENCY + 1
        ctr_hi = Signal(32)
        ctr_wait = Signal(range(CTR_LATENCY + 2))
        rd_word = Signal(regs.ADDR_BITS - 2)
        is_ctr = Signal()
        is_hi = Signal()
        m.d.comb += rd_word.eq(lite.rd_addr[2:])
        base_w = regs.COUNTER_BASE >> 2
        m.d.comb += [
            is_ctr.eq((rd_word >= base_w) & (rd_word < base_w + 2 * isa.NUM_COUNTERS)),
            is_hi.eq(rd_word[0]),
        ]
        with m.If(lite.rd):
            m.d.sync += ctr_wait.eq(0)
            with m.If(is_ctr & ~is_hi):
                m.d.sync += [
                    ctrl.ctr_sel.eq((rd_word - base_w) >> 1),
                    ctr_wait.eq(CTR_LATENCY + 1),
                ]
        with m.Elif(ctr_wait != 0):
            m.d.sync += ctr_wait.eq(ctr_wait - 1)
        reg_value = Signal(32)
        consts = regs.config_values(cfg, self.data_bytes)
        with m.Switch(rd_word):
            for r in regs.REGISTERS:
                with m.Case(r.offset >> 2):
                    if r.name in consts:
                        m.d.comb += reg_value.eq(consts[r.name])
                    elif r.name == "STATUS":
                        m.d.comb += reg_value.eq(status)
                    elif r.name == "PROG_ADDR":
                        m.d.comb += reg_value.eq(prog_addr)
                    elif r.name == "AXI_ERR_ADDR":
                        m.d.comb += reg_value.eq(master.error_addr)
                    elif r.name == "IRQ_ENABLE":
                        m.d.comb += reg_value.eq(irq_en)
                    elif r.name == "MEM_BASE":
                        m.d.comb += reg_value.eq(mem_base)
                    elif r.name.endswith("_LO"):
                        m.d.comb += reg_value.eq(ctrl.ctr_value[:32])
                    elif r.name.endswith("_HI"):
                        m.d.comb += reg_value.eq(ctr_hi)
        m.d.comb += [lite.rd_data.eq(reg_value), lite.rd_ack.eq(~lite.rd & (ctr_wait <= 1))]
        with m.If(~lite.rd & (ctr_wait == 1)):
            m.d.sync += ctr_hi.eq(ctrl.ctr_value[32:])
        return m


def _strobed(reg: Signal, wdata: Signal, wstrb: Signal) -> list:
    """``reg`` takes the bytes of ``wdata`` whose strobe is set."""
    return [
        reg[8 * i : 8 * i + 8].eq(Mux(wstrb[i], wdata[8 * i : 8 * i + 8], reg[8 * i : 8 * i + 8]))
        for i in range(4)
    ]
