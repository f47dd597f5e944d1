"""8N1 UART: a receiver and a transmitter with ``amaranth.lib.stream`` byte ports.

``divisor`` is clock cycles per bit (``clk_hz // baud``, at least 4). The receiver synchronises
the pin, finds the start bit's falling edge, checks the start bit again at half a bit, samples
each data bit in its middle and checks the stop bit. A byte whose stop bit is low is dropped and
``frame_error`` pulses; a byte that arrives while the previous one was not taken is dropped and
``overrun`` pulses. Neither stops the receiver.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


def check_divisor(divisor: int) -> None:
    if not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"UART divisor must be an integer >= 4 cycles per bit, not {divisor!r}")


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Cycles per bit; raises ValueError when the baud rate is off by more than 2 %."""
    div = round(clk_hz / baud)
    check_divisor(div)
    err = abs(clk_hz / div - baud) / baud
    if err > 0.02:
        raise ValueError(f"{baud} baud from {clk_hz / 1e6:g} MHz is {100 * err:.1f}% off")
    return div


class UARTRx(wiring.Component):
    def __init__(self, divisor: int):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__(
            {
                "rx": In(1, init=1),
                "data": Out(stream.Signature(8)),
                "frame_error": Out(1),
                "overrun": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        div = self.divisor
        timer = Signal(range(div + div // 2 + 1))
        bit = Signal(range(9))
        shreg = Signal(8)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(rx):  # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(div - 1), shreg.eq((shreg >> 1) | (rx << 7))]
                    m.d.sync += bit.eq(bit + 1)
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(self.data.valid & ~self.data.ready):
                        m.d.sync += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.data.valid.eq(1), self.data.payload.eq(shreg)]
                        m.next = "IDLE"
            with m.State("BREAK"):  # wait for the line to go idle before the next start bit
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    def __init__(self, divisor: int):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        div = self.divisor
        timer = Signal(range(div))
        shreg = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += self.data.ready.eq(left == 0)
        m.d.comb += self.tx.eq(shreg[0])
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [
                shreg.eq(self.data.payload << 1 | (1 << 9)),  # start 0, data LSB first, stop 1
                left.eq(10),
                timer.eq(div - 1),
            ]
        with m.Elif(left != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [
                    timer.eq(div - 1),
                    shreg.eq((shreg >> 1) | (1 << 9)),
                    left.eq(left - 1),
                ]
        return m
