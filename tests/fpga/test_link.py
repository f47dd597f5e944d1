# amaranth: UnusedElaboratable=no
"""Amaranth-simulator tests of the UART, the host link, the board memory system and SPI flash."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS
from sushi_hw.fpga.board import BoardCore, LinkParams
from sushi_hw.fpga.host import encode_request, flash_base, flash_window, parse_response
from sushi_hw.fpga.host_link import MAX_WRITE, Cmd, Status, crc8, crc8_update
from sushi_hw.fpga.memsys import MemInterconnect
from sushi_hw.fpga.uart import UARTRx, UARTTx, uart_divisor

DIV = 4


def test_crc8_check_value():
    assert crc8(b"123456789") == 0xF4  # CRC-8 (poly 0x07) check value
    assert crc8_update(0, 0x80) == 0x89


def test_uart_divisor_rejects_bad_rates():
    assert uart_divisor(12e6, 115200) == 104
    with pytest.raises(ValueError, match="off"):
        uart_divisor(10e6, 1_800_000)  # 6 cycles = 1.667 Mbaud, 7.4 % off
    with pytest.raises(ValueError, match=">= 4"):
        UARTRx(3)


def test_uart_loopback_and_framing_error():
    m = Module()
    m.submodules.tx = tx = UARTTx(5)
    m.submodules.rx = rx = UARTRx(5)
    rng = random.Random(1)
    data = [rng.randrange(256) for _ in range(20)]
    got, errors = [], []

    async def bench(ctx):
        for b in data:
            ctx.set(tx.data.valid, 1)
            ctx.set(tx.data.payload, b)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)
        await ctx.tick().repeat(5 * 12)

    async def glue(ctx):
        # the wire: tx -> rx, except for one broken byte with a low stop bit
        async for _, _, tx_v in ctx.tick().sample(tx.tx):
            ctx.set(rx.rx, tx_v)

    async def sink(ctx):
        ctx.set(rx.data.ready, 1)
        async for _, _, v, p, fe in ctx.tick().sample(
            rx.data.valid, rx.data.payload, rx.frame_error
        ):
            if v:
                got.append(p)
            if fe:
                errors.append(1)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(glue)
    sim.add_process(sink)
    sim.run_until(1e-8 * 5 * 10 * 25)
    assert got == data and not errors

    # a byte with its stop bit low: dropped, frame_error pulses, the next byte still arrives
    m2 = Module()
    m2.submodules.rx = rx2 = UARTRx(DIV)
    got2, errs2 = [], []

    async def bang(ctx):
        ctx.set(rx2.data.ready, 1)
        for b, stop in ((0x55, 0), (0xC3, 1)):
            for bit in [0] + [(b >> i) & 1 for i in range(8)] + [stop]:
                ctx.set(rx2.rx, bit)
                await ctx.tick().repeat(DIV)
            ctx.set(rx2.rx, 1)
            await ctx.tick().repeat(3 * DIV)

    async def watch(ctx):
        async for _, _, v, p, fe in ctx.tick().sample(
            rx2.data.valid, rx2.data.payload, rx2.frame_error
        ):
            if v:
                got2.append(p)
            if fe:
                errs2.append(1)

    sim = Simulator(m2)
    sim.add_clock(1e-8)
    sim.add_testbench(bang)
    sim.add_process(watch)
    sim.run_until(1e-8 * DIV * 40)
    assert errs2 == [1] and got2[-1:] == [0xC3] and 0x55 not in got2


class FlashModel:
    """SPI flash (mode 0, FAST READ 0x0B and READ 0x03) driven from the sampled pins."""

    def __init__(self, data: bytes):
        self.data = data
        self.reads = 0

    async def run(self, ctx, dut):
        prev_sclk, cs_prev = 0, 1
        bits = cmd = 0
        # react to the pins as they change (a real flash answers within the SCLK half period)
        async for sclk, cs_n, copi in ctx.changed(dut.flash_sclk, dut.flash_cs_n, dut.flash_copi):
            if cs_n:
                bits = cmd = 0
            elif cs_prev:
                bits = cmd = 0
            else:
                if sclk and not prev_sclk:  # rising edge: flash samples COPI
                    if bits < 32:
                        cmd = (cmd << 1) | copi
                    bits += 1
                    if bits == 32 and (cmd >> 24) in (0x03, 0x0B):
                        self.reads += 1
                elif prev_sclk and not sclk:  # falling edge: next output bit
                    op, addr = cmd >> 24, cmd & 0xFFFFFF
                    start = 32 if op == 0x03 else 40
                    if op in (0x03, 0x0B) and bits >= start:
                        k = bits - start
                        byte = self.data[(addr + k // 8) % len(self.data)]
                        ctx.set(dut.flash_cipo, (byte >> (7 - k % 8)) & 1)
            prev_sclk, cs_prev = sclk, cs_n


class UartHost:
    """Bit-bangs request frames into uart_rx and collects response bytes from uart_tx."""

    def __init__(self, dut, div: int):
        self.dut, self.div = dut, div
        self.rx_bytes: list[int] = []

    async def send(self, ctx, data: bytes, gap_after: int | None = None) -> None:
        for i, b in enumerate(data):
            for bit in [0] + [(b >> k) & 1 for k in range(8)] + [1]:
                ctx.set(self.dut.uart_rx, bit)
                await ctx.tick().repeat(self.div)
            if gap_after is not None and i == gap_after:
                return

    async def listen(self, ctx) -> None:
        div = self.div
        state, count, bitn, cur = "idle", 0, 0, 0
        async for _, _, tx in ctx.tick().sample(self.dut.uart_tx):
            if state == "idle":
                if not tx:
                    state, count = "start", div // 2
            elif state == "start":
                count -= 1
                if count == 0:
                    state, count, bitn, cur = "data", div, 0, 0
            elif state == "data":
                count -= 1
                if count == 0:
                    cur |= tx << bitn
                    bitn += 1
                    count = div
                    if bitn == 8:
                        state = "stop"
            elif state == "stop":
                count -= 1
                if count == 0:
                    self.rx_bytes.append(cur)
                    state = "idle"

    async def response(self, ctx, timeout: int = 200_000) -> tuple[int, bytes]:
        for _ in range(timeout):
            if len(self.rx_bytes) >= 4:
                n = 5 + self.rx_bytes[2] + 256 * self.rx_bytes[3]
                if len(self.rx_bytes) >= n:
                    frame = bytes(self.rx_bytes[:n])
                    del self.rx_bytes[:n]
                    return parse_response(frame)
            await ctx.tick()
        raise AssertionError(f"no response; have {bytes(self.rx_bytes).hex()}")


LP = LinkParams(divisor=DIV, timeout=400, idle_cycles=120, wake_cycles=10, flash_offset=0x100)


CFG = PRESETS["tiny"]
FLASH_BASE = flash_base(CFG)


def test_flash_window_is_inside_the_accelerator_address_space():
    for cfg in PRESETS.values():
        base, size = flash_window(cfg)
        assert base == cfg.mem_bytes // 2 and base + size <= cfg.mem_bytes
        assert size == min(cfg.mem_bytes // 2, 1 << 24)
    assert FLASH_BASE == 0x2_0000  # tiny: 256 KiB address space, flash in the upper half
    with pytest.raises(ValueError, match="overlaps the flash window at 0x20000"):
        BoardCore(CFG, LP, ram_bytes=CFG.mem_bytes // 2 + CFG.mem_width)
    with pytest.raises(ValueError, match="mem_bytes // 2"):
        MemInterconnect(CFG, 2, CFG.mem_bytes)
    BoardCore(CFG, LP, ram_bytes=CFG.mem_bytes // 2)  # exactly up to the window is fine


#: the memory system as simulated (pipeline registers, the ECP5's) and as built for the iCE40
PIPELINE_VARIANTS = pytest.mark.parametrize("pipe_regs", [True, False], ids=["ecp5", "ice40"])


def _run_board(
    bench_body,
    flash_data: bytes,
    cycles: int = 400_000,
    lp: LinkParams = LP,
    pipe_regs: bool = True,
):
    cfg = CFG
    opts = BuildOptions(pipeline_regs=pipe_regs)
    dut = BoardCore(cfg, lp, ram_bytes=1024, with_accel=False, opts=opts)
    flash = FlashModel(flash_data)
    host = UartHost(dut, DIV)

    async def bench(ctx):
        ctx.set(dut.uart_rx, 1)
        await ctx.tick().repeat(50)
        await bench_body(ctx, host, dut, flash)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)

    async def flash_proc(ctx):
        await flash.run(ctx, dut)

    sim.add_process(flash_proc)
    sim.add_process(host.listen)
    sim.run_until(cycles * 1e-8)
    return flash


async def _req(ctx, host, frame: bytes) -> tuple[int, bytes]:
    await host.send(ctx, frame)
    return await host.response(ctx)


@PIPELINE_VARIANTS
def test_link_memory_flash_and_bad_frames(pipe_regs: bool):
    rng = random.Random(7)
    flash_data = bytes(rng.randrange(256) for _ in range(4096))
    done = []

    async def body(ctx, host, dut, flash):
        # INFO
        st, info = await _req(ctx, host, encode_request(Cmd.INFO))
        shape = bytes([CFG.rows, CFG.cols, CFG.mem_width])
        assert st == Status.OK and info[:4] == b"SUSH" and info[5:8] == shape
        # RAM write then read back
        data = bytes(rng.randrange(256) for _ in range(64))
        assert (await _req(ctx, host, encode_request(Cmd.WRITE, 32, data)))[0] == Status.OK
        st, back = await _req(ctx, host, encode_request(Cmd.READ, 32, length=64))
        assert st == Status.OK and back == data
        # flash read through the memory port: flash byte offset 0x100 + 8
        st, fl = await _req(ctx, host, encode_request(Cmd.READ, FLASH_BASE + 8, length=24))
        assert st == Status.OK and fl == flash_data[0x108 : 0x108 + 24]
        # RAM and flash accesses inside the map raise no bus error
        st, s = await _req(ctx, host, encode_request(Cmd.STATUS))
        assert st == Status.OK and not s[0] & 8
        # bad CRC: rejected, memory untouched
        bad = bytearray(encode_request(Cmd.WRITE, 32, bytes(64)))
        bad[-1] ^= 0xFF
        assert (await _req(ctx, host, bytes(bad)))[0] == Status.BAD_CRC
        assert (await _req(ctx, host, encode_request(Cmd.READ, 32, length=64)))[1] == data
        # unknown command, misaligned address, oversize write
        assert (await _req(ctx, host, encode_request(0x7E, 0)))[0] == Status.BAD_CMD
        assert (await _req(ctx, host, encode_request(Cmd.READ, 1, length=4)))[0] == (Status.BAD_ARG)
        big = encode_request(Cmd.WRITE, 0, bytes(MAX_WRITE + 4))
        assert (await _req(ctx, host, big))[0] == Status.BAD_ARG
        # truncated frame: TIMEOUT, then the link works again
        await host.send(ctx, encode_request(Cmd.WRITE, 0, bytes(16)), gap_after=9)
        assert (await host.response(ctx))[0] == Status.TIMEOUT
        # a write to flash is refused by the memory system and flagged in STATUS
        await _req(ctx, host, encode_request(Cmd.WRITE, FLASH_BASE, bytes(4)))
        st, s = await _req(ctx, host, encode_request(Cmd.STATUS))
        assert st == Status.OK and s[0] & 8 and int.from_bytes(s[4:6], "little") == 5
        # between the RAM and the flash window: unmapped, reads zeros
        st, z = await _req(ctx, host, encode_request(Cmd.READ, FLASH_BASE - 8, length=8))
        assert st == Status.OK and z == bytes(8)
        # RUN and COUNTER answer OK (no accelerator attached here)
        assert (await _req(ctx, host, encode_request(Cmd.RUN, 0)))[0] == Status.OK
        st, back = await _req(ctx, host, encode_request(Cmd.READ, 32, length=64))
        assert back == data
        done.append(1)

    flash = _run_board(body, flash_data, cycles=600_000, pipe_regs=pipe_regs)
    assert done, "the test bench did not finish"
    assert flash.reads >= 1


@PIPELINE_VARIANTS
def test_link_addresses_above_the_map_and_slow_spi_clock(pipe_regs: bool):
    """Addresses at and above mem_bytes (the link keeps only the bits below it and whether any
    above is set) are unmapped, not aliases of the RAM; the flash reads at SCLK = clk / 4."""
    rng = random.Random(3)
    flash_data = bytes(rng.randrange(256) for _ in range(4096))
    lp = LinkParams(
        divisor=DIV,
        timeout=400,
        idle_cycles=120,
        wake_cycles=10,
        flash_offset=0x100,
        spi_half_period=2,
    )
    done = []

    async def body(ctx, host, dut, flash):
        data = bytes(rng.randrange(256) for _ in range(16))
        assert (await _req(ctx, host, encode_request(Cmd.WRITE, 32, data)))[0] == Status.OK
        st, s = await _req(ctx, host, encode_request(Cmd.STATUS))
        assert st == Status.OK and not s[0] & 8
        for addr in (CFG.mem_bytes + 32, 0x8000_0020, 0xFFFF_FFF0):
            st, z = await _req(ctx, host, encode_request(Cmd.READ, addr, length=16))
            assert st == Status.OK and z == bytes(16), hex(addr)
        st, s = await _req(ctx, host, encode_request(Cmd.STATUS))
        assert st == Status.OK and s[0] & 8
        # a write up there is dropped: the RAM below keeps its data
        await _req(ctx, host, encode_request(Cmd.WRITE, CFG.mem_bytes + 32, bytes(16)))
        assert (await _req(ctx, host, encode_request(Cmd.READ, 32, length=16)))[1] == data
        st, fl = await _req(ctx, host, encode_request(Cmd.READ, FLASH_BASE + 6, length=10))
        assert st == Status.OK and fl == flash_data[0x106 : 0x106 + 10]
        done.append(1)

    flash = _run_board(body, flash_data, cycles=300_000, lp=lp, pipe_regs=pipe_regs)
    assert done, "the test bench did not finish"
    assert flash.reads == 1


@pytest.mark.parametrize("preset", ["default", "large"])
def test_link_wide_memory_port(preset: str):
    """The link, the interconnect, the RAM and the flash reader at mem_width 8 and 16."""
    cfg = PRESETS[preset]
    mw, base = cfg.mem_width, flash_base(cfg)
    rng = random.Random(5)
    flash_data = bytes(rng.randrange(256) for _ in range(4096))
    dut = BoardCore(cfg, LP, ram_bytes=1024, with_accel=False)
    flash, host = FlashModel(flash_data), UartHost(dut, DIV)
    done = []

    async def bench(ctx):
        ctx.set(dut.uart_rx, 1)
        await ctx.tick().repeat(50)
        st, info = await _req(ctx, host, encode_request(Cmd.INFO))
        assert st == Status.OK and info[5:8] == bytes([cfg.rows, cfg.cols, mw])
        assert int.from_bytes(info[12:16], "little") == 1024
        data = bytes(rng.randrange(256) for _ in range(4 * mw))
        assert (await _req(ctx, host, encode_request(Cmd.WRITE, 2 * mw, data)))[0] == Status.OK
        st, back = await _req(ctx, host, encode_request(Cmd.READ, mw, length=6 * mw))
        assert st == Status.OK and back[mw : 5 * mw] == data
        st, fl = await _req(ctx, host, encode_request(Cmd.READ, base + mw, length=3 * mw))
        assert st == Status.OK and fl == flash_data[0x100 + mw : 0x100 + 4 * mw]
        misaligned = encode_request(Cmd.WRITE, mw // 2, bytes(mw))
        assert (await _req(ctx, host, misaligned))[0] == Status.BAD_ARG
        st, s = await _req(ctx, host, encode_request(Cmd.STATUS))
        assert st == Status.OK and s[0] & 8 == 0 and int.from_bytes(s[4:6], "little") == 1
        done.append(1)

    async def flash_proc(ctx):
        await flash.run(ctx, dut)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(flash_proc)
    sim.add_process(host.listen)
    sim.run_until(300_000 * 1e-8)
    assert done, "the test bench did not finish"
