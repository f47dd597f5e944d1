"""A single-port RAM that becomes iCE40UP SPRAM (SB_SPRAM256KA) when the build asks for it.

One address for reads and writes; read data arrives one cycle after ``en`` (and holds while
``en`` and ``we`` are low). In simulation and on other devices it is an Amaranth ``Memory``
with a read and a write port on the same address, which behaves the same. The build options
select SPRAM per RAM name (``BuildOptions.spram``, a set of names the FPGA flow takes from the
fit plan); Yosys does not infer SPRAM for these RAMs by itself.

``registered=True`` adds a register on the read data (read data two cycles after ``en``),
built from :class:`sushi_hw.bram.RegisteredRam`, whose ECP5 form keeps it in the block RAM's
own output register (the ECP5 builds ask for it; SPRAM is never registered).
``ports_registered=True`` registers the address, enables and write data as well (one more
cycle: ``read_latency`` 3), in copies per group of block RAMs on the ECP5.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bram import RegisteredRam
from .build_options import SIMULATION, BuildOptions

SPRAM_WIDTH, SPRAM_DEPTH = 16, 16384


class SinglePortRam(wiring.Component):
    def __init__(
        self,
        name: str,
        width: int,
        depth: int,
        *,
        registered: bool = False,
        ports_registered: bool = False,
        opts: BuildOptions = SIMULATION,
    ):
        self.ram_name, self.width, self.depth, self.opts = name, width, depth, opts
        self.registered, self.ports_registered = registered, ports_registered
        #: cycles from ``en`` to the word on ``rdata``
        self.read_latency = RegisteredRam.latency_for(registered, ports_registered)
        super().__init__(
            {
                "addr": In(range(depth)),
                "en": In(1),  # read
                "we": In(1),  # write (wins over en)
                "wdata": In(width),
                "rdata": Out(width),
            }
        )

    def use_spram(self) -> bool:
        plain = not (self.registered or self.ports_registered)
        return self.ram_name in self.opts.spram and self.depth <= SPRAM_DEPTH and plain

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.use_spram():
            addr = Signal(14)
            m.d.comb += addr.eq(self.addr)
            for i in range(-(-self.width // SPRAM_WIDTH)):
                lo = i * SPRAM_WIDTH
                hi = min(self.width, lo + SPRAM_WIDTH)
                din, dout = Signal(SPRAM_WIDTH), Signal(SPRAM_WIDTH)
                m.d.comb += [din.eq(self.wdata[lo:hi]), self.rdata[lo:hi].eq(dout)]
                m.submodules[f"spram{i}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr,
                    i_DATAIN=din,
                    i_MASKWREN=0b1111,
                    i_WREN=self.we,
                    i_CHIPSELECT=self.we | self.en,
                    i_CLOCK=ClockSignal(),
                    i_STANDBY=0,
                    i_SLEEP=0,
                    i_POWEROFF=1,
                    o_DATAOUT=dout,
                )
        else:
            # a write port and a read port on the same address
            m.submodules.ram = ram = RegisteredRam(
                self.width,
                self.depth,
                registered=self.registered,
                write_registered=self.ports_registered,
                addr_registered=self.ports_registered,
                opts=self.opts,
            )
            m.d.comb += [
                ram.write.addr.eq(self.addr),
                ram.write.en.eq(self.we),
                ram.write.data.eq(self.wdata),
                ram.read.addr.eq(self.addr),
                ram.read.en.eq(self.en & ~self.we),
                self.rdata.eq(ram.read.data),
            ]
        return m
