"""cocotb test of the whole board top ``sushi_board``: digits queries over the UART, weights
from an SPI flash, the accelerator computing in between.

Everything goes through the board's pins. The UART model bit-bangs ``uart_rx`` and decodes
``uart_tx`` (one wake-up per bit, not per clock); it is wrapped as a serial port so that the
host driver a real board uses, :class:`sushi_hw.fpga.host.BoardClient`, runs unchanged in a
cocotb bridge thread. The SPI flash model answers the two commands of
:class:`sushi_hw.fpga.spi_flash.SPIFlashReader` (0xAB, 0x0B) and fails the test on anything
else. The weight image is "programmed" into the flash model; only programs, inputs and
results cross the UART.

Parameters (environment): ``SUSHI_CONFIG`` (AccelConfig JSON), ``SUSHI_SEED`` (which test
images) and ``SUSHI_BOARD_OUT`` (results JSON).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import (
    ClockCycles,
    Event,
    FallingEdge,
    First,
    RisingEdge,
    SimTimeoutError,
    Timer,
    with_timeout,
)
from sushi_hw import isa
from sushi_hw.config import AccelConfig
from sushi_hw.fpga.host import BoardClient, flash_base
from sushi_hw.fpga.spi_flash import CMD_FAST_READ, CMD_RELEASE_PD
from sushi_hw.generate import BOARD_SIM_LINK, BOARD_SIM_RAM_BYTES
from sushi_hw.program import act_bytes, int32_from_bytes, out_words
from sushi_sched.compiler import (
    LayerCall,
    PBLayout,
    WeightImage,
    cache_program,
    network_program,
    offchip_weight_bytes,
)
from sushi_sched.digits.store import load_digits_supernet

CLK_NS = 10

# the board's on-chip RAM (BOARD_SIM_RAM_BYTES): programs, the input and the logits
PROG_ADDR = 0x000
CACHE_PROG_ADDR = 0x400
BAD_PROG_ADDR = 0x600
IN_ADDR = 0x800
OUT_ADDR = 0xA00
assert OUT_ADDR + 0x200 <= BOARD_SIM_RAM_BYTES

# the queries: SubNet, PB contents ({tensor: (kc, nc)} tiles) while it runs
FLASH_ONLY = "i8-d2-8-16"  # every weight tile from the flash
CACHE_PLAN = {"fc1": (2, 2), "head": (2, 3)}
PARTLY_CACHED = "i8-d2-16-8"  # fc1 half, fc2 none, head all from the PB
AFTER_ERROR = "i8-d1-16"  # served after a bad program, PB still filled


class UartModel:
    """8N1 UART on the board's pins, ``divisor`` clock cycles per bit."""

    def __init__(self, dut, divisor: int):
        self.dut = dut
        self.bit_ns = divisor * CLK_NS
        self.rx = bytearray()
        self.rx_event = Event()
        self.bytes_sent = 0

    def start(self) -> None:
        self.dut.uart_rx.value = 1
        cocotb.start_soon(self._listen())

    async def send(self, data: bytes) -> None:
        d = self.dut
        await RisingEdge(d.clk)
        await Timer(1, "ns")  # change the pin between clock edges
        bit = Timer(self.bit_ns, "ns")
        for b in data:
            for v in (0, *((b >> i) & 1 for i in range(8)), 1):
                d.uart_rx.value = v
                await bit
        self.bytes_sent += len(data)

    async def _listen(self) -> None:
        tx = self.dut.uart_tx
        half, bit = Timer(self.bit_ns // 2, "ns"), Timer(self.bit_ns, "ns")
        while True:
            await FallingEdge(tx)
            await half
            assert int(tx.value) == 0, f"uart_tx: start bit glitch at {get_sim_time('ns')} ns"
            b = 0
            for i in range(8):
                await bit
                b |= int(tx.value) << i
            await bit
            assert int(tx.value) == 1, f"uart_tx: stop bit low at {get_sim_time('ns')} ns"
            self.rx.append(b)
            self.rx_event.set()

    async def recv(self, n: int, timeout_ns: int) -> bytes:
        """Up to ``n`` bytes; fewer if the line stays quiet for ``timeout_ns``."""
        while len(self.rx) < n:
            self.rx_event.clear()
            try:
                await with_timeout(self.rx_event.wait(), timeout_ns, "ns")
            except SimTimeoutError:
                break
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out


class SimSerial:
    """The byte pipe :class:`BoardClient` talks to (``serial.Serial``'s write/read with a
    timeout), on the UART model. Usable only from a cocotb :func:`bridge` thread."""

    def __init__(self, uart: UartModel, timeout_ns: int):
        self._send, self._recv = resume(uart.send), resume(uart.recv)
        self.timeout_ns = timeout_ns

    def write(self, data: bytes) -> int:
        self._send(bytes(data))
        return len(data)

    def read(self, n: int) -> bytes:
        return self._recv(n, self.timeout_ns)


class SpiFlashModel:
    """SPI NOR flash, mode 0: RELEASE POWER-DOWN (0xAB) and FAST READ (0x0B + 24-bit address
    + 8 dummy clocks). Erased bytes read 0xFF. Any other opcode, a read before the wake-up
    (or sooner than ``t_res_ns`` after it), SCLK high at CS edges or a partial byte fail."""

    def __init__(self, dut, size: int = 1 << 24, t_res_ns: int = 0):
        self.dut = dut
        self.mem = bytearray(b"\xff") * size
        self.t_res_ns = t_res_ns
        self.awake_at: float | None = None  # sim time the wake-up was complete
        self.selected = False
        self.deselected_at = -1.0
        self.bits = self.shift = 0
        self.op = self.addr = None
        self.read_bytes = 0  # data bytes clocked out by FAST READs
        self.reads = 0
        self.wakes = 0

    def program(self, offset: int, data: bytes) -> None:
        self.mem[offset : offset + len(data)] = data

    def start(self) -> None:
        self.dut.flash_cipo.value = 0
        cocotb.start_soon(self._chip_select())
        cocotb.start_soon(self._clock())

    def _fail(self, what: str) -> None:
        raise AssertionError(f"SPI flash protocol error at {get_sim_time('ns')} ns: {what}")

    async def _chip_select(self) -> None:
        d = self.dut
        while True:
            await FallingEdge(d.flash_cs_n)
            if int(d.flash_sclk.value):
                self._fail("CS# fell with SCLK high (not mode 0)")
            self.selected, self.bits, self.shift, self.op, self.addr = True, 0, 0, None, None
            await RisingEdge(d.flash_cs_n)
            self.selected, self.deselected_at = False, get_sim_time("ns")
            if self.op == CMD_RELEASE_PD:
                if self.bits != 8:
                    self._fail(f"0xAB with {self.bits} clocks instead of 8")
                self.wakes += 1
                self.awake_at = get_sim_time("ns") + self.t_res_ns
            elif self.op == CMD_FAST_READ:
                data_bits = self.bits - 40
                if data_bits < 0 or data_bits % 8:
                    self._fail(f"FAST READ ended after {self.bits} clocks (not 40 + whole bytes)")
                self.read_bytes += data_bits // 8
            elif self.bits:
                self._fail(f"deselected after {self.bits} clocks of an incomplete opcode")

    async def _clock(self) -> None:
        d = self.dut
        rise, fall = RisingEdge(d.flash_sclk), FallingEdge(d.flash_sclk)
        while True:
            edge = await First(rise, fall)
            if not self.selected:
                # the controller may drop SCLK in the cycle it deselects the flash (after the
                # last rising edge, as mode 0 allows); any other toggle is a protocol error
                if edge is rise or get_sim_time("ns") != self.deselected_at:
                    self._fail("SCLK toggled with CS# high")
                continue
            if edge is rise:  # the flash samples COPI
                if self.bits < 32:
                    self.shift = (self.shift << 1) | int(d.flash_copi.value)
                self.bits += 1
                if self.bits == 8:
                    self.op = self.shift
                    if self.op == CMD_FAST_READ:
                        if self.awake_at is None:
                            self._fail("FAST READ before RELEASE POWER-DOWN")
                        if get_sim_time("ns") < self.awake_at:
                            self._fail("FAST READ sooner than tRES1 after RELEASE POWER-DOWN")
                        self.reads += 1
                    elif self.op != CMD_RELEASE_PD:
                        self._fail(f"unexpected opcode 0x{self.op:02x}")
                elif self.bits == 9 and self.op == CMD_RELEASE_PD:
                    self._fail("0xAB followed by more clocks")
                elif self.bits == 32:
                    self.addr = self.shift & 0xFFFFFF
            elif self.op == CMD_FAST_READ and self.bits >= 40:  # falling: next data bit out
                k = self.bits - 40
                byte = self.mem[(self.addr + k // 8) % len(self.mem)]
                d.flash_cipo.value = (byte >> (7 - k % 8)) & 1


class DigitsOnBoard:
    """Compiles digits queries for the board's memory map and serves them with a BoardClient
    (runs in the bridge thread; the flash model is only read for its byte counter)."""

    def __init__(self, cfg: AccelConfig, flash: SpiFlashModel, seed: int, log):
        self.cfg, self.flash, self.seed, self.log = cfg, flash, seed, log
        self.net = load_digits_supernet()
        tensors = {n: np.ascontiguousarray(self.net.tensor(n)) for n in self.net.tensor_names()}
        # weights at flash byte flash_offset + (addr - flash_base): the flash window
        self.base = flash_base(cfg)
        self.image = WeightImage.build(cfg, tensors, self.base)
        self.x_test, self.y_test = self.net.test_set()
        self.rng = np.random.default_rng(seed)
        self.results: list[dict] = []

    def program_flash(self) -> int:
        off = BOARD_SIM_LINK.flash_offset
        for name, blob in self.image.blobs.items():
            self.flash.program(off + self.image.addr[name] - self.base, blob)
        return self.image.end - self.base

    def calls(self, key: str) -> list[LayerCall]:
        return [LayerCall(g.name, g.k, g.n, g.requant, g.relu) for g in self.net.layers(key)]

    def padded_weight_bytes(self, key: str) -> int:
        r, c = self.cfg.rows, self.cfg.cols
        return sum(-(-g.k // r) * -(-g.n // c) * self.cfg.tile_bytes for g in self.net.layers(key))

    def _run(self, client: BoardClient, addr: int, what: str):
        before = self.flash.read_bytes
        client.run(addr)
        st = client.wait(max_polls=500)
        ctr = {c.name.lower(): client.counter(c) for c in isa.Counter}
        ctr["flash_bytes"] = self.flash.read_bytes - before
        self.log.info(
            "%s: done=%s error=%s code=%d, %d cycles, %d weight bytes from flash, %d from PB",
            what,
            st.done,
            st.error,
            st.error_code,
            ctr["cycles"],
            ctr["rd_weight_bytes"],
            ctr["pb_read_bytes"],
        )
        return st, ctr

    def fill_pb(self, client: BoardClient, layout: PBLayout) -> dict:
        prog = b"".join([*cache_program(self.cfg, self.image, layout), isa.done()])
        assert len(prog) <= BAD_PROG_ADDR - CACHE_PROG_ADDR
        client.write(CACHE_PROG_ADDR, prog)
        st, ctr = self._run(client, CACHE_PROG_ADDR, f"CACHE {layout.blocks}")
        assert st.done and not st.error and not st.bus_error, f"CACHE program: {st}"
        want = layout.tiles * self.cfg.tile_bytes
        assert ctr["rd_weight_bytes"] == want, f"CACHE read {ctr['rd_weight_bytes']} B, not {want}"
        assert ctr["flash_bytes"] == want, (
            f"flash sent {ctr['flash_bytes']} B for CACHE, not {want}"
        )
        return ctr

    def serve(self, client: BoardClient, key: str, layout: PBLayout) -> dict:
        cfg = self.cfg
        img = int(self.rng.integers(0, len(self.y_test)))
        where = f"seed {self.seed}, SubNet {key}, image {img}, PB {layout.blocks}"
        calls = self.calls(key)
        prog = b"".join(network_program(cfg, self.image, layout, calls, 1, IN_ADDR, OUT_ADDR))
        assert len(prog) <= CACHE_PROG_ADDR - PROG_ADDR
        x = self.x_test[img : img + 1]
        t0 = time.perf_counter()
        client.write(PROG_ADDR, prog)
        client.write(IN_ADDR, act_bytes(cfg, x[:, : calls[0].k]))
        st, ctr = self._run(client, PROG_ADDR, where)
        assert st.done and not st.error and st.error_code == 0 and not st.bus_error, (
            f"{where}: query halted with {st}"
        )
        raw = client.read(OUT_ADDR, out_words(cfg, 1, 10, int32=True) * cfg.rows)
        logits = int32_from_bytes(cfg, raw, 1, 10)[0]
        ref = self.net.reference_logits(key, x)[0]
        assert np.array_equal(logits, ref), f"{where}: logits {logits.tolist()} != {ref.tolist()}"
        off = offchip_weight_bytes(cfg, layout, calls, 1)
        pb = self.padded_weight_bytes(key) - off
        assert ctr["rd_weight_bytes"] == off, f"{where}: {ctr['rd_weight_bytes']} B != {off} B"
        assert ctr["flash_bytes"] == off, f"{where}: flash sent {ctr['flash_bytes']} B != {off}"
        assert ctr["pb_read_bytes"] == pb, f"{where}: PB served {ctr['pb_read_bytes']} B != {pb}"
        assert ctr["commands"] == len(calls) + 3, f"{where}: {ctr['commands']} commands"
        rec = {
            "subnet": key,
            "image": img,
            "pb_tiles": layout.tiles,
            "logits": logits.tolist(),
            "match": True,
            "predicted": int(np.argmax(logits)),
            "label": int(self.y_test[img]),
            "expected_flash_bytes": off,
            "expected_pb_bytes": pb,
            "wall_s": time.perf_counter() - t0,
            **ctr,
        }
        self.results.append(rec)
        return rec

    def bad_program(self, client: BoardClient) -> dict:
        """An unknown opcode: the accelerator halts with ILLEGAL_OPCODE, nothing wedges."""
        bad_op = 0x9
        assert bad_op not in {int(op) for op in isa.Op}
        prog = bytes([bad_op]) + bytes(range(1, isa.CMD_BYTES)) + isa.done()
        client.write(BAD_PROG_ADDR, prog)
        st, ctr = self._run(client, BAD_PROG_ADDR, "illegal opcode")
        assert not st.busy and st.error and not st.done, f"bad program: {st}"
        assert st.error_code == isa.ErrorCode.ILLEGAL_OPCODE, f"bad program: {st}"
        assert ctr["flash_bytes"] == 0 and ctr["rd_weight_bytes"] == 0
        return {"status": vars(st), **ctr}


@cocotb.test()
async def serve_digits_over_uart(dut):
    cfg = AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))
    seed = int(os.environ.get("SUSHI_SEED", "1"))
    out_path = os.environ.get("SUSHI_BOARD_OUT")
    lp = BOARD_SIM_LINK
    dut._log.info("seed %d; SubNets %s, %s, %s", seed, FLASH_ONLY, PARTLY_CACHED, AFTER_ERROR)
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    uart = UartModel(dut, lp.divisor)
    flash = SpiFlashModel(dut, t_res_ns=lp.wake_cycles * CLK_NS)
    app = DigitsOnBoard(cfg, flash, seed, dut._log)
    image_bytes = app.program_flash()  # "program the flash"; weights never cross the UART
    dut.rst.value = 1
    uart.start()
    flash.start()
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    port = SimSerial(uart, timeout_ns=200_000 * CLK_NS)
    t0 = time.perf_counter()
    out: dict = {"seed": seed, "image_bytes": image_bytes}

    def session() -> None:
        client = BoardClient(port)
        info = client.info()
        assert (info.rows, info.cols, info.mem_width, info.pb_bytes, info.ram_bytes) == (
            cfg.rows,
            cfg.cols,
            cfg.mem_width,
            cfg.pb_bytes,
            BOARD_SIM_RAM_BYTES,
        ), info
        st = client.status()
        assert not (st.busy or st.done or st.error or st.bus_error), st
        # the host sees the flash at the same addresses as the accelerator
        head = app.image.addr["head"]
        assert client.read(head, 32) == app.image.blobs["head"][:32]
        out["flash_only"] = app.serve(client, FLASH_ONLY, PBLayout())
        layout = PBLayout.allocate(cfg, CACHE_PLAN)
        out["cache"] = app.fill_pb(client, layout)
        out["partly_cached"] = app.serve(client, PARTLY_CACHED, layout)
        out["bad_program"] = app.bad_program(client)
        out["after_error"] = app.serve(client, AFTER_ERROR, layout)
        st = client.status()
        assert st.done and not st.error and st.bad_frames == 0 and not st.bus_error, st

    await bridge(session)()
    assert flash.wakes == 1, f"{flash.wakes} RELEASE POWER-DOWN commands"
    assert int(dut.led_done.value) == 1 and int(dut.led_error.value) == 0
    out.update(
        queries=app.results,
        sim_cycles=int(get_sim_time("ns") // CLK_NS),
        wall_s=time.perf_counter() - t0,
        uart_bytes_sent=uart.bytes_sent,
        flash_reads=flash.reads,
    )
    dut._log.info(
        "served %d queries bit-exactly in %d cycles, %.1f s",
        len(app.results),
        out["sim_cycles"],
        out["wall_s"],
    )
    if out_path:
        with open(out_path, "w") as f:
            json.dump(out, f, indent=1)
