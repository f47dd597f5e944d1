"""Board-level design: SushiAccel, the UART host link, on-chip RAM and the SPI flash.

:class:`BoardCore` is platform independent (simulated by cocotb as top ``sushi_board``);
:class:`BoardTop` adds the PLL and the board's pins for a bitstream build.

::

    uart_rx -> UARTRx -> HostLink -> m0 \\               /-> MemRam (programs, activations)
    uart_tx <- UARTTx <-/      |          MemInterconnect
                        doorbell/status  m1 /             \\-> SPIFlashReader -> SPI flash (weights)
                               SushiAccel.mem
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Elaboratable, Instance, Module
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out
from sushi_hw.build_options import SIMULATION, BuildOptions
from sushi_hw.config import AccelConfig
from sushi_hw.pipeline import HalfRateRegister

from .host_link import HostLink
from .memsys import MemInterconnect, MemRam, check_ram_bytes
from .spi_flash import SPIFlashReader
from .uart import UARTRx, UARTTx, uart_divisor


@dataclass(frozen=True)
class LinkParams:
    """Timing of the host link and flash, in clock cycles."""

    divisor: int  #: UART cycles per bit
    timeout: int  #: silence inside a frame that aborts it
    idle_cycles: int  #: silence after a bad frame before the error response
    spi_half_period: int = 1
    wake_cycles: int = 100
    flash_offset: int = 0x10_0000  #: weights start 1 MiB into the flash, past the bitstream

    @classmethod
    def for_clock(cls, clk_hz: float, baud: int = 115200, **kw) -> LinkParams:
        div = uart_divisor(clk_hz, baud)
        return cls(
            divisor=div,
            timeout=int(clk_hz * 0.05),  # 50 ms: USB-serial adapters pause between packets
            idle_cycles=div * 10 * 4,  # four byte times
            wake_cycles=int(clk_hz * 5e-6) + 1,
            **kw,
        )


class BoardCore(wiring.Component):
    def __init__(
        self,
        cfg: AccelConfig,
        link: LinkParams,
        ram_bytes: int,
        with_accel: bool = True,
        opts: BuildOptions = SIMULATION,
    ):
        check_ram_bytes(cfg, ram_bytes)  # the RAM must end below the flash window
        self.cfg, self.link, self.ram_bytes, self.with_accel = cfg, link, ram_bytes, with_accel
        self.opts = opts
        super().__init__(
            {
                "uart_rx": In(1, init=1),
                "uart_tx": Out(1, init=1),
                "flash_sclk": Out(1),
                "flash_cs_n": Out(1, init=1),
                "flash_copi": Out(1),
                "flash_cipo": In(1),
                "led_busy": Out(1),
                "led_done": Out(1),
                "led_error": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, lp = self.cfg, self.link
        m.submodules.urx = urx = UARTRx(lp.divisor)
        m.submodules.utx = utx = UARTTx(lp.divisor)
        m.submodules.link = link = HostLink(
            cfg,
            timeout=lp.timeout,
            idle_cycles=lp.idle_cycles,
            ram_bytes=self.ram_bytes,
        )
        m.submodules.ic = ic = MemInterconnect(cfg, 2, self.ram_bytes, self.opts)
        m.submodules.ram = ram = MemRam(cfg, self.ram_bytes, self.opts)
        m.submodules.flash = flash = SPIFlashReader(
            cfg,
            flash_offset=lp.flash_offset,
            half_period=lp.spi_half_period,
            wake_cycles=lp.wake_cycles,
        )
        m.d.comb += [
            urx.rx.eq(self.uart_rx),
            self.uart_tx.eq(utx.tx),
            link.rx_error.eq(urx.frame_error),
            link.flash_write_error.eq(flash.write_error | ic.bus_error),
            self.flash_sclk.eq(flash.sclk),
            self.flash_cs_n.eq(flash.cs_n),
            self.flash_copi.eq(flash.copi),
            flash.cipo.eq(self.flash_cipo),
        ]
        wiring.connect(m, urx.data, link.rx)
        # the link's byte stream to the UART and its memory read data pass through one-word
        # buffers: its FSM and response byte choice then reach neither the UART's enables nor
        # (through the interconnect) the RAM's read pipeline, iCE40 deep paths. Its write
        # data stays direct (with one-hot FSMs that path was not deep).
        m.submodules.tx_buf = tx_buf = HalfRateRegister(8)
        wiring.connect(m, link.tx, tx_buf.i)
        wiring.connect(m, tx_buf.o, utx.data)
        _connect_read_buffered(m, "rd_buf", link.mem, ic.m0, cfg)
        wiring.connect(m, ic.ram, ram.bus)
        wiring.connect(m, ic.flash, flash.bus)
        if self.with_accel:
            from sushi_hw.accel import SushiAccel

            m.submodules.accel = accel = SushiAccel(cfg, self.opts)
            if self.opts.pipeline_regs:  # the interconnect slices every master's data
                wiring.connect(m, accel.mem, ic.m1)
            else:
                # the accelerator's read data through a one-word buffer: its ready (FSM state
                # and the dynamic buffer's level) ran through the interconnect into the
                # RAM's read pipeline, the iCE40's critical path in most builds. A full-rate
                # slice (StreamRegister) has 17 more flip-flops, on a device 99% full; the
                # buffer halves only the rate of on-chip RAM reads (commands, activations),
                # not of the SPI flash's weights, which come a beat per 32+ cycles.
                _connect_read_buffered(m, "accel_rbuf", accel.mem, ic.m1, cfg)
            wiring.connect(m, link.ctrl, accel.ctrl)
        m.d.comb += [
            self.led_busy.eq(link.ctrl.busy),
            self.led_done.eq(link.ctrl.done),
            self.led_error.eq(link.ctrl.error),
        ]
        return m


def _connect_read_buffered(m: Module, name: str, master, port, cfg: AccelConfig) -> None:
    """A memory-port master onto an interconnect port, its request and write data direct and
    its read data through a one-word buffer (submodule ``name``)."""
    m.submodules[name] = buf = HalfRateRegister(8 * cfg.mem_width)
    wiring.connect(m, master.req, port.req)
    wiring.connect(m, master.wdata, port.wdata)
    wiring.connect(m, port.rdata, buf.i)
    wiring.connect(m, buf.o, master.rdata)


class BoardTop(Elaboratable):
    """BoardCore + PLL + pins of ``board`` (a :class:`sushi_hw.fpga.boards.Board`), built with
    ``opts`` (the board's fit plan gives them: :meth:`sushi_hw.fpga.fit.FitPlan.build_options`)."""

    def __init__(
        self, board, cfg: AccelConfig, opts: BuildOptions, *, ram_bytes: int, baud: int = 115200
    ):
        check_ram_bytes(cfg, ram_bytes)
        self.board, self.cfg, self.opts, self.ram_bytes = board, cfg, opts, ram_bytes
        self.link = LinkParams.for_clock(
            cfg.clock_mhz * 1e6, baud, spi_half_period=1 if board.family == "ice40" else 2
        )

    def elaborate(self, platform) -> Module:
        from .clocks import PllClock

        m = Module()
        b = self.board
        m.domains.sync = ClockDomain("sync")  # driven by the PLL
        m.submodules.clk = PllClock(b, self.cfg.clock_mhz)
        m.submodules.core = core = BoardCore(self.cfg, self.link, self.ram_bytes, opts=self.opts)

        def pin(resource: str, number: int, direction: str) -> io.Buffer:
            """An I/O buffer on a one-pin resource (inversion comes with the port)."""
            port = platform.request(resource, number, dir="-")
            m.submodules[f"pin_{resource}{number}"] = buf = io.Buffer(direction, port)
            return buf

        uart = platform.request("uart", 0, dir="-")
        m.submodules.pin_uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.pin_uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.uart_rx.eq(rx.i), tx.o.eq(core.uart_tx)]
        flash = "spi_flash_1x" if b.family == "ice40" else "spi_flash"
        spi = platform.request(flash, 0, dir="-")
        bufs = {}
        for sub, d in (("cs", "o"), ("copi", "o"), ("cipo", "i"), ("wp", "o"), ("hold", "o")):
            bufs[sub] = m.submodules[f"pin_flash_{sub}"] = io.Buffer(d, getattr(spi, sub))
        m.d.comb += [
            bufs["cs"].o.eq(~core.flash_cs_n),
            bufs["copi"].o.eq(core.flash_copi),
            core.flash_cipo.eq(bufs["cipo"].i),
            bufs["wp"].o.eq(0),
            bufs["hold"].o.eq(0),
        ]
        if b.family == "ice40":
            m.submodules.pin_flash_clk = sclk = io.Buffer("o", spi.clk)
            m.d.comb += sclk.o.eq(core.flash_sclk)
        else:
            # the ECP5 reaches the configuration flash's clock pin only through USRMCLK
            m.submodules.usrmclk = Instance(
                "USRMCLK", i_USRMCLKI=core.flash_sclk, i_USRMCLKTS=0, a_keep=1
            )
            m.d.comb += pin("uart_tx_enable", 0, "o").o.eq(1)
        led0, led1 = pin("led", 0, "o"), pin("led", 1, "o")
        m.d.comb += [led0.o.eq(core.led_busy), led1.o.eq(core.led_error | core.led_done)]
        return m
