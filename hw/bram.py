"""A simple dual-port RAM whose read data is registered, in the block RAM itself on the ECP5.

Why this module exists: on the ULX3S the activation buffers' block RAMs (DP16KD) were the
critical path of `default` (docs/fpga.md): 5.83 ns clock-to-out, routing, and a depth-cascade
LUT into the fabric register that follows the read. A DP16KD has its own output register
(``REGMODE_B = "OUTREG"``), but Yosys's ECP5 memory mapping (``share/lattice/brams_16kd.txt``)
never uses it. :class:`RegisteredRam` instantiates DP16KD with that register, in the one
aspect ratio whose depth covers the RAM, so no block is cascaded in depth and nothing sits
between a block and its output register.

Ports: ``write`` (``en``, ``addr``, ``data``) and ``read`` (``en``, ``addr``, ``data``).
``read.data`` at cycle t+2 is the word at ``read.addr`` in cycle t if ``read.en`` was high
then, else it repeats (a read port's data holds while it is not enabled). A read of the word
being written in the same cycle is not defined (SushiAccel never does it: the command checks
keep a GEMM's output off its own input). With ``registered=False`` it is a plain read port:
the data arrives at t+1.

``write_registered=True`` puts a register on the write port (``en``, ``addr``, ``data``): a
write lands a cycle later, so a read sees it from two cycles after the write on. Its purpose is
timing: the write data's select (LOAD's words or GEMM's output rows, by the command state)
then ends at a flip-flop, not at the block RAM's data pins across the die (an ECP5 critical
path of ``default``).

``addr_registered=True`` registers the read port's ``en`` and ``addr`` (the data then arrives
at t+3). On the ECP5 the registers are copied, one copy per :data:`BLOCKS_PER_COPY` block RAMs
(the write port's too, if registered), so that no flip-flop drives the pins of blocks spread
over the die: the PB's 64 blocks were ``large``'s critical path (19.5 ns of routing from the
command state to their clock enables). The copies carry :data:`REPLICA_ATTR`, by which the
board flow keeps Yosys from merging them back into one (``KEEP_REPLICAS``).

Built as DP16KD instances when ``registered`` and the build options ask for them
(``BuildOptions.ecp5_bram``, the ULX3S flow sets it) and the depth is at most 16384; otherwise an
Amaranth ``Memory`` and, if registered, a fabric register: the same cycle behaviour. Yosys has
no simulation model of DP16KD; ``tests/hw/dp16kd_model.v`` is our own, written from Lattice
TN1264 and Yosys's own DP16KD mapping (``brams_map_16kd.v``: data bits from 0, the word
address in ``AD[13:k]``, byte enables in ``AD[1:0]`` at width 18), and
``tests/hw/test_bram.py`` runs the instances against it under Icarus.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .build_options import SIMULATION, BuildOptions

#: attribute of register copies that synthesis must keep apart (Yosys merges equal flip-flops)
REPLICA_ATTR = "sushi_replica"

#: block RAMs driven by one copy of a registered address and enable
BLOCKS_PER_COPY = 8

#: DP16KD aspect ratios: (data width, depth, low address bits below the word address)
DP16KD_MODES = ((18, 1024, 4), (9, 2048, 3), (4, 4096, 2), (2, 8192, 1), (1, 16384, 0))


def dp16kd_mode(depth: int) -> tuple[int, int, int] | None:
    """The widest DP16KD aspect ratio that holds ``depth`` words, or None if none does."""
    return next((mode for mode in DP16KD_MODES if mode[1] >= depth), None)


class RegisteredRam(wiring.Component):
    def __init__(
        self,
        width: int,
        depth: int,
        *,
        registered: bool = True,
        write_registered: bool = False,
        addr_registered: bool = False,
        opts: BuildOptions = SIMULATION,
    ):
        self.width, self.depth, self.registered = width, depth, registered
        self.opts = opts
        self.write_registered, self.addr_registered = write_registered, addr_registered
        #: cycles from a read's ``en``/``addr`` to its word on ``read.data``
        self.read_latency = self.latency_for(registered, addr_registered)
        port = {"en": Out(1), "addr": Out(range(depth))}
        super().__init__(
            {
                "write": In(wiring.Signature({**port, "data": Out(width)})),
                "read": In(wiring.Signature({**port, "data": In(width)})),
            }
        )

    @staticmethod
    def latency_for(registered: bool, addr_registered: bool) -> int:
        return 1 + int(registered) + int(addr_registered)

    def use_dp16kd(self) -> bool:
        return self.registered and self.opts.ecp5_bram and dp16kd_mode(self.depth) is not None

    def copies(self) -> int:
        """Copies of each registered address and enable: one per group of block RAMs."""
        if not self.use_dp16kd():
            return 1
        bits = dp16kd_mode(self.depth)[0]
        blocks = -(-self.width // bits)
        return -(-blocks // BLOCKS_PER_COPY)

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self.copies()
        writes = [self.write] * n
        if self.write_registered:
            # the data bits go to one block each: one register; the address and enable: copies
            data = Signal.like(self.write.data, name="w_data_q", reset_less=True)
            m.d.sync += data.eq(self.write.data)
            writes = [_register_port(m, self.write, "w", i, n, data) for i in range(n)]
        reads = [self.read] * n
        if self.addr_registered:
            reads = [_register_port(m, self.read, "r", i, n, self.read.data) for i in range(n)]
        if self.use_dp16kd():
            self._dp16kd(m, writes, reads)
            return m
        write, read = writes[0], reads[0]
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.depth, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [
            wp.en.eq(write.en),
            wp.addr.eq(write.addr),
            wp.data.eq(write.data),
            rp.en.eq(read.en),
            rp.addr.eq(read.addr),
        ]
        if self.registered:
            m.d.sync += self.read.data.eq(rp.data)
        else:
            m.d.comb += self.read.data.eq(rp.data)
        return m

    def _dp16kd(self, m: Module, writes: list, reads: list) -> None:
        bits, _, low = dp16kd_mode(self.depth)
        blocks = -(-self.width // bits)
        wdata = Cat(writes[0].data, Const(0, blocks * bits - self.width))
        rdata = Signal(blocks * bits)
        m.d.comb += self.read.data.eq(rdata[: self.width])
        # address pins: the word address at AD[13:low]; at width 18, AD[1:0] are byte enables
        fill = Const(0b11 if bits == 18 else 0, low)
        for i in range(blocks):
            write, read = writes[i // BLOCKS_PER_COPY], reads[i // BLOCKS_PER_COPY]
            ad_a = Cat(fill, write.addr, Const(0, 14))[:14]
            ad_b = Cat(fill, read.addr, Const(0, 14))[:14]
            pins: dict[str, object] = {}
            for j in range(14):
                pins[f"i_ADA{j}"] = ad_a[j]
                pins[f"i_ADB{j}"] = ad_b[j]
            for j in range(18):
                pins[f"i_DIA{j}"] = wdata[i * bits + j] if j < bits else Const(0)
                pins[f"i_DIB{j}"] = Const(0)
                if j < bits:
                    pins[f"o_DOB{j}"] = rdata[i * bits + j]
            for j in range(3):
                pins[f"i_CSA{j}"] = Const(0)
                pins[f"i_CSB{j}"] = Const(0)
            m.submodules[f"bram{i}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=bits,
                p_DATA_WIDTH_B=bits,
                p_REGMODE_A="NOREG",
                p_REGMODE_B="OUTREG",  # the point of this module
                p_RESETMODE="SYNC",
                p_ASYNC_RESET_RELEASE="SYNC",
                p_CSDECODE_A="0b000",
                p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL",
                p_WRITEMODE_B="NORMAL",
                p_GSR="AUTO",
                i_CLKA=ClockSignal(),
                i_CEA=Const(1),
                i_OCEA=Const(1),
                i_WEA=write.en,
                i_RSTA=Const(0),
                i_CLKB=ClockSignal(),
                i_CEB=read.en,  # the read latch holds while not enabled
                i_OCEB=Const(1),  # the output register copies it every cycle
                i_WEB=Const(0),
                i_RSTB=Const(0),
                **pins,
            )


def _register_port(m: Module, port, prefix: str, i: int, n: int, data) -> SimpleNamespace:
    """Copy ``i`` of ``n`` of a port's enable and address, registered (``data`` passes)."""
    attrs = {REPLICA_ATTR: 1} if n > 1 else {}
    suffix = str(i) if n > 1 else ""
    en = Signal(name=f"{prefix}_en_q{suffix}", attrs=attrs)
    addr = Signal.like(port.addr, name=f"{prefix}_addr_q{suffix}", reset_less=True, attrs=attrs)
    m.d.sync += [en.eq(port.en), addr.eq(port.addr)]
    return SimpleNamespace(en=en, addr=addr, data=data)
