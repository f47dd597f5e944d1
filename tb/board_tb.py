"""cocotb test of the whole board top ``sushi_board``: digits queries over the UART, weights
from an SPI flash, the accelerator computing in between.

Everything goes through the board's pins. The UART model bit-bangs ``uart_rx`` and decodes
``uart_tx`` (one wake-up per bit, not per clock); it is wrapped as a serial port so that the
host driver a real board uses, :class:`sushi_hw.fpga.host.BoardClient`, runs unchanged in a
cocotb bridge thread. The SPI flash model answers the two commands of
:class:`sushi_hw.fpga.spi_flash.SPIFlashReader` (0xAB, 0x0B) and fails the test on anything
else. The weight image is "programmed" into the flash model; only programs, inputs and
results cross the UART.

The queries themselves are served by the one server of :mod:`sushi_sched.runtime` on the board
backend (:func:`sushi_sched.runtime.board.connect`), the code ``sushi board query`` runs on a
real board: the weight image, the memory map, the programs and the result checks are the same;
this test adds the flash model's byte counts and the checks.

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
from sushi_hw.fpga.host import BoardClient
from sushi_hw.fpga.spi_flash import CMD_FAST_READ, CMD_RELEASE_PD
from sushi_hw.generate import BOARD_SIM_LINK, BOARD_SIM_RAM_BYTES
from sushi_sched.compiler import PBLayout, offchip_weight_bytes
from sushi_sched.digits.store import load_digits_supernet
from sushi_sched.runtime.backend import RunError
from sushi_sched.runtime.board import build_flash_image, connect, verify_flash
from sushi_sched.runtime.models import CNNModel, MLPModel
from sushi_sched.runtime.server import Server

CLK_NS = 10

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
    """The cocotb side of the digits queries: :class:`sushi_sched.runtime.server.Server` on
    the board backend (the code ``sushi board query`` runs on a real board) does the serving;
    this class
    programs the flash model, counts the bytes it clocks out per program and checks every
    result. Runs in the bridge thread."""

    def __init__(self, cfg: AccelConfig, flash: SpiFlashModel, seed: int, log):
        self.cfg, self.flash, self.seed, self.log = cfg, flash, seed, log
        self.net = load_digits_supernet()
        # weights at flash byte flash_offset + (addr - flash_base): the flash window
        self.flash_image = build_flash_image(MLPModel(cfg, self.net))
        assert self.flash_image.offset == BOARD_SIM_LINK.flash_offset
        self.image = self.flash_image.image
        self.rng = np.random.default_rng(seed)
        self.n_test = len(self.net.test_set()[1])
        self.server: Server | None = None
        self.results: list[dict] = []

    def program_flash(self) -> int:
        self.flash.program(self.flash_image.offset, self.flash_image.data)
        return len(self.flash_image.data)

    def connect(self, client: BoardClient, info) -> Server:  # noqa: ANN001
        self.server = connect(
            client,
            self.cfg,
            self.net,
            info=info,
            flash=self.flash_image,
            max_polls=500,
            timeout_s=None,
            log=self.log,
        )
        verify_flash(self.server.backend, self.flash_image)  # what `sushi board query` checks
        return self.server

    def fill_pb(self, layout: PBLayout) -> dict:
        before = self.flash.read_bytes
        res = self.server.fill_pb(layout)
        ctr = {**res.counters, "flash_bytes": self.flash.read_bytes - before}
        want = layout.tiles * self.cfg.tile_bytes
        assert res.expected_bytes == want and not res.problems, res.problems
        assert ctr["rd_weight_bytes"] == want, f"CACHE read {ctr['rd_weight_bytes']} B, not {want}"
        assert ctr["flash_bytes"] == want, (
            f"flash sent {ctr['flash_bytes']} B for CACHE, not {want}"
        )
        return ctr

    def serve(self, key: str, layout: PBLayout) -> dict:
        img = int(self.rng.integers(0, self.n_test))
        where = f"seed {self.seed}, SubNet {key}, image {img}, PB {layout.blocks}"
        before = self.flash.read_bytes
        try:
            r = self.server.query(key, image=img, layout=layout)
        except RunError as e:
            raise AssertionError(f"{where}: query halted with {e.status}") from e
        ctr = {**r.counters, "flash_bytes": self.flash.read_bytes - before}
        logits, ref = r.logits, r.reference
        assert r.match and np.array_equal(logits, ref), (
            f"{where}: logits {logits.tolist()} != {ref.tolist()}"
        )
        off, pb = r.expected_offchip_bytes, r.expected_pb_bytes
        assert off == offchip_weight_bytes(self.cfg, layout, self.server.calls(key), 1)
        assert ctr["rd_weight_bytes"] == off, f"{where}: {ctr['rd_weight_bytes']} B != {off} B"
        assert ctr["flash_bytes"] == off, f"{where}: flash sent {ctr['flash_bytes']} B != {off}"
        assert ctr["pb_read_bytes"] == pb, f"{where}: PB served {ctr['pb_read_bytes']} B != {pb}"
        n_calls = len(self.net.layers(key))
        assert ctr["commands"] == n_calls + 3, f"{where}: {ctr['commands']} commands"
        assert not r.problems, f"{where}: {r.problems}"
        rec = {
            **r.as_dict(),
            "expected_flash_bytes": off,
            **ctr,
        }
        self.results.append(rec)
        return rec

    def bad_program(self) -> dict:
        """An unknown opcode: the accelerator halts with ILLEGAL_OPCODE, nothing wedges."""
        bad_op = 0x9
        assert bad_op not in {int(op) for op in isa.Op}
        prog = bytes([bad_op]) + bytes(range(1, isa.CMD_BYTES)) + isa.done()
        ram = self.server.mem
        assert len(prog) <= ram.scratch_bytes, ram
        self.server.backend.write(ram.scratch, prog)
        before = self.flash.read_bytes
        res = self.server.backend.run(ram.scratch, "illegal opcode")
        st, ctr = res.status, {**res.counters, "flash_bytes": self.flash.read_bytes - before}
        assert not st.busy and st.error and not st.done, f"bad program: {st}"
        assert st.error_code == isa.ErrorCode.ILLEGAL_OPCODE, f"bad program: {st}"
        assert ctr["flash_bytes"] == 0 and ctr["rd_weight_bytes"] == 0
        return {"status": vars(st), **ctr}


def start_board(dut) -> tuple[UartModel, SpiFlashModel]:  # noqa: ANN001
    """Clock, UART and SPI flash models on the board's pins (program the flash, then
    :func:`reset_board`)."""
    lp = BOARD_SIM_LINK
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    return UartModel(dut, lp.divisor), SpiFlashModel(dut, t_res_ns=lp.wake_cycles * CLK_NS)


async def reset_board(dut, uart: UartModel, flash: SpiFlashModel) -> None:  # noqa: ANN001
    """Reset the board with the models listening."""
    dut.rst.value = 1
    uart.start()
    flash.start()
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0


@cocotb.test()
async def serve_digits_over_uart(dut):
    cfg = AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))
    seed = int(os.environ.get("SUSHI_SEED", "1"))
    out_path = os.environ.get("SUSHI_BOARD_OUT")
    dut._log.info("seed %d; SubNets %s, %s, %s", seed, FLASH_ONLY, PARTLY_CACHED, AFTER_ERROR)
    uart, flash = start_board(dut)
    app = DigitsOnBoard(cfg, flash, seed, dut._log)
    image_bytes = app.program_flash()  # "program the flash"; weights never cross the UART
    await reset_board(dut, uart, flash)
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
        server = app.connect(client, info)  # checks INFO and reads every tensor back
        out["ram_map"] = server.mem.as_dict()
        out["flash_only"] = app.serve(FLASH_ONLY, PBLayout())
        layout = PBLayout.allocate(cfg, CACHE_PLAN)
        out["cache"] = app.fill_pb(layout)
        out["partly_cached"] = app.serve(PARTLY_CACHED, layout)
        out["bad_program"] = app.bad_program()
        out["after_error"] = app.serve(AFTER_ERROR, layout)
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


# ---- the CNN on the ULX3S's preset -----------------------------------------------------------

#: two SubNets that lower onto a 16-column array and share their stem and first two stages;
#: the first is served with an empty PB, then its slices are cached and the second reads the
#: shared ones from the PB. The smallest such pair: the SPI flash model wakes Python on every
#: SCLK edge, about 16 cycles a weight byte
CNN_FLASH_ONLY = "16k1-24k1-16k1"
CNN_PARTLY_CACHED = "16k1-24k1-16k3"


@cocotb.test()
async def serve_cnn_over_uart(dut):
    """The residual CNN over the board's pins, image to logits on chip (ULX3S preset)."""
    cfg = AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))
    seed = int(os.environ.get("SUSHI_SEED", "1"))
    out_path = os.environ.get("SUSHI_BOARD_OUT")
    uart, flash = start_board(dut)
    model = CNNModel(cfg)
    image = build_flash_image(model)
    flash.program(image.offset, image.data)  # weights never cross the UART
    await reset_board(dut, uart, flash)
    port = SimSerial(uart, timeout_ns=200_000 * CLK_NS)
    rng = np.random.default_rng(seed)
    n_test = len(model.test_set[1])
    t0 = time.perf_counter()
    queries: list[dict] = []

    def serve(server: Server, key: str, layout) -> dict:  # noqa: ANN001
        img = int(rng.integers(0, n_test))
        where = f"seed {seed}, SubNet {key}, image {img}"
        before = flash.read_bytes
        r = server.query(key, image=img, layout=layout)
        ctr = {**r.counters, "flash_bytes": flash.read_bytes - before}
        assert r.match and np.array_equal(r.logits, r.reference), (
            f"{where}: logits {r.logits.tolist()} != {r.reference.tolist()}"
        )
        assert not r.problems, f"{where}: {r.problems}"  # weight bytes and commands as compiled
        assert ctr["flash_bytes"] == ctr["rd_weight_bytes"], f"{where}: {ctr}"
        rec = {**r.as_dict(), **ctr}
        queries.append(rec)
        return rec

    def session() -> dict:
        client = BoardClient(port)
        info = client.info()
        assert (info.rows, info.cols, info.ram_bytes) == (cfg.rows, cfg.cols, BOARD_SIM_RAM_BYTES)
        server = connect(client, cfg, model, info=info, flash=image, max_polls=2000, timeout_s=None)
        verify_flash(server.backend, image)  # what `sushi board query` checks
        first = serve(server, CNN_FLASH_ONLY, None)
        assert first["pb_read_bytes"] == 0 and first["flash_bytes"] > 0
        before = flash.read_bytes
        cache = server.fill_pb(model.subgraph(CNN_FLASH_ONLY))
        assert not cache.problems, cache.problems
        assert flash.read_bytes - before == cache.expected_bytes > 0
        second = serve(server, CNN_PARTLY_CACHED, cache.layout)
        assert second["pb_read_bytes"] > 0 and second["flash_bytes"] > 0
        st = client.status()
        assert st.done and not st.error and st.bad_frames == 0 and not st.bus_error, st
        return {"ram_map": server.mem.as_dict(), "cache_bytes": cache.expected_bytes}

    out = await bridge(session)()
    out.update(
        seed=seed,
        image_bytes=len(image.data),
        queries=queries,
        sim_cycles=int(get_sim_time("ns") // CLK_NS),
        wall_s=time.perf_counter() - t0,
    )
    dut._log.info(
        "served %d CNN queries bit-exactly in %d cycles, %.1f s",
        len(queries),
        out["sim_cycles"],
        out["wall_s"],
    )
    if out_path:
        with open(out_path, "w") as f:
            json.dump(out, f, indent=1)
