"""UART host link: a framed request/response protocol (docs/uart.md) onto the memory port,
the doorbell, status and counters.

Request  ``A5 | cmd | addr u32 LE | len u16 LE | payload (WRITE only) | crc8``
Response ``5A | status | len u16 LE | payload | crc8``

``crc8`` is CRC-8 (polynomial 0x07, init 0) over every byte after the sync byte. A frame that
is malformed (unknown command, bad length or alignment, wrong CRC, a framing error on the line,
or silence of ``timeout`` cycles inside a frame) is answered with an error status once the line
has been idle for ``idle_cycles``; nothing of it reaches the memory or the doorbell. The link
never waits on the accelerator, so a bad frame cannot wedge it.
"""

from __future__ import annotations

import enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from sushi_hw.config import AccelConfig
from sushi_hw.mem_port import mem_port_signature

SYNC_REQ = 0xA5
SYNC_RSP = 0x5A
MAX_WRITE = 256  #: largest WRITE payload (bytes); it is buffered until its CRC checks out
MAX_READ = 32768  #: largest READ length (bytes)
INFO_MAGIC = b"SUSH"
PROTOCOL_VERSION = 1


class Cmd(enum.IntEnum):
    WRITE = 0x01
    READ = 0x02
    RUN = 0x03
    STATUS = 0x04
    COUNTER = 0x05
    INFO = 0x06


class Status(enum.IntEnum):
    OK = 0x00
    BAD_CRC = 0x01
    BAD_CMD = 0x02
    BAD_ARG = 0x03
    BUSY = 0x04
    TIMEOUT = 0x05
    LINE_ERROR = 0x06


def crc8_update(crc: int, byte: int) -> int:
    """Software CRC-8 (poly 0x07, init 0, no reflection), the same as the hardware."""
    c = crc ^ byte
    for _ in range(8):
        c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def crc8(data: bytes) -> int:
    c = 0
    for b in data:
        c = crc8_update(c, b)
    return c


def _crc8_hw(crc: Value, byte: Value) -> Value:
    bits = [crc[i] ^ byte[i] for i in range(8)]
    for _ in range(8):
        msb = bits[7]
        shifted = [Const(0, 1)] + bits[:7]
        bits = [shifted[i] ^ (msb if (0x07 >> i) & 1 else 0) for i in range(8)]
    return Cat(*bits)


class HostLink(wiring.Component):
    """Frame decoder and responder.

    ``status`` bits: 0 busy, 1 done, 2 error, 3 flash write error; ``ctr_sel``/``ctr_value``
    read the accelerator's counters. ``info`` words describe the design to the host.
    """

    def __init__(
        self,
        cfg: AccelConfig,
        *,
        timeout: int,
        idle_cycles: int,
        ram_bytes: int = 0,
        ctr_bits: int = 8,
    ):
        if timeout < 2 or idle_cycles < 2:
            raise ValueError("timeout and idle_cycles must be >= 2 cycles")
        self.cfg = cfg
        self.timeout, self.idle_cycles = timeout, idle_cycles
        self.mw = cfg.mem_width
        self.ram_bytes = ram_bytes
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "rx_error": In(1),  # the UART saw a framing error
                "tx": Out(stream.Signature(8)),
                "mem": Out(mem_port_signature(cfg)),
                "doorbell": Out(1),
                "prog_addr": Out(32),
                "busy": In(1),
                "done": In(1),
                "error": In(1),
                "error_code": In(8),
                "flash_write_error": In(1),
                "ctr_sel": Out(ctr_bits),
                "ctr_value": In(64),
                "bad_frames": Out(16),
            }
        )

    def info_bytes(self) -> bytes:
        cfg = self.cfg
        return (
            INFO_MAGIC
            + bytes([PROTOCOL_VERSION, cfg.rows, cfg.cols, cfg.mem_width])
            + cfg.pb_bytes.to_bytes(4, "little")
            + self.ram_bytes.to_bytes(4, "little")
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        mw = self.mw
        lmw = mw.bit_length() - 1

        # write payload buffer, one memory-port beat per word
        m.submodules.wbuf = wbuf = Memory(shape=8 * mw, depth=MAX_WRITE // mw, init=[])
        wb_w = wbuf.write_port()
        wb_r = wbuf.read_port()

        cmd = Signal(8)
        addr = Signal(32)
        length = Signal(16)
        hdr_idx = Signal(range(8))
        crc = Signal(8)
        cnt = Signal(17)  # bytes of payload handled
        word = Signal(8 * mw)
        status = Signal(8)
        quiet_max = max(self.timeout, self.idle_cycles)
        quiet = Signal(range(quiet_max + 1))

        rx_fire = self.rx.valid & self.rx.ready
        byte = self.rx.payload
        with m.If(rx_fire):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != quiet_max):
            m.d.sync += quiet.eq(quiet + 1)
        timed_out = quiet >= self.timeout
        idle = quiet >= self.idle_cycles

        # response: header + payload source + crc
        rsp_len = Signal(16)
        rsp_regs = Signal(8 * 16)  # small payloads, shifted out LSB first
        rsp_from_mem = Signal()
        tx_crc = Signal(8)
        tx_idx = Signal(17)
        tx_byte = Signal(8)
        m.d.comb += self.tx.payload.eq(tx_byte)
        tx_fire = self.tx.valid & self.tx.ready
        with m.If(tx_fire):
            m.d.sync += tx_crc.eq(_crc8_hw(tx_crc, tx_byte))

        # read data unpacking
        rword = Signal(8 * mw)
        rleft = Signal(range(mw + 1))

        aligned = (addr[:lmw] == 0) & (length[:lmw] == 0)
        ctr_value = Signal(64)
        m.d.comb += [self.prog_addr.eq(addr), self.ctr_sel.eq(addr)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(rx_fire & (byte == SYNC_REQ)):
                    m.d.sync += [hdr_idx.eq(0), crc.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx_error):
                    m.d.sync += status.eq(Status.LINE_ERROR)
                    m.next = "DRAIN"
                with m.Elif(rx_fire):
                    m.d.sync += [crc.eq(_crc8_hw(crc, byte)), hdr_idx.eq(hdr_idx + 1)]
                    with m.Switch(hdr_idx):
                        with m.Case(0):
                            m.d.sync += cmd.eq(byte)
                        for i in range(4):
                            with m.Case(1 + i):
                                m.d.sync += addr[8 * i : 8 * i + 8].eq(byte)
                        for i in range(2):
                            with m.Case(5 + i):
                                m.d.sync += length[8 * i : 8 * i + 8].eq(byte)
                    with m.If(hdr_idx == 6):
                        m.next = "CHECK"
                with m.Elif(timed_out):
                    m.d.sync += status.eq(Status.TIMEOUT)
                    m.next = "RESPOND_ERR"
            with m.State("CHECK"):
                m.d.sync += [cnt.eq(0), word.eq(0)]
                ok_len0 = length == 0
                with m.Switch(cmd):
                    with m.Case(Cmd.WRITE):
                        with m.If((length == 0) | (length > MAX_WRITE) | ~aligned):
                            m.d.sync += status.eq(Status.BAD_ARG)
                            m.next = "DRAIN"
                        with m.Else():
                            m.next = "PAYLOAD"
                    with m.Case(Cmd.READ):
                        with m.If((length == 0) | (length > MAX_READ) | ~aligned):
                            m.d.sync += status.eq(Status.BAD_ARG)
                            m.next = "DRAIN"
                        with m.Else():
                            m.next = "CRC"
                    with m.Case(Cmd.RUN, Cmd.STATUS, Cmd.COUNTER, Cmd.INFO):
                        with m.If(~ok_len0):
                            m.d.sync += status.eq(Status.BAD_ARG)
                            m.next = "DRAIN"
                        with m.Else():
                            m.next = "CRC"
                    with m.Default():
                        m.d.sync += status.eq(Status.BAD_CMD)
                        m.next = "DRAIN"
            with m.State("PAYLOAD"):
                m.d.comb += self.rx.ready.eq(1)
                last_byte_of_word = cnt[:lmw] == mw - 1
                nword = Signal.like(word)
                m.d.comb += nword.eq((word >> 8) | (byte << (8 * (mw - 1))) if mw > 1 else byte)
                m.d.comb += [wb_w.addr.eq(cnt[lmw:]), wb_w.data.eq(nword)]
                with m.If(self.rx_error):
                    m.d.sync += status.eq(Status.LINE_ERROR)
                    m.next = "DRAIN"
                with m.Elif(rx_fire):
                    m.d.sync += [crc.eq(_crc8_hw(crc, byte)), cnt.eq(cnt + 1), word.eq(nword)]
                    m.d.comb += wb_w.en.eq(last_byte_of_word)
                    with m.If(cnt + 1 == length):
                        m.next = "CRC"
                with m.Elif(timed_out):
                    m.d.sync += status.eq(Status.TIMEOUT)
                    m.next = "RESPOND_ERR"
            with m.State("CRC"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx_error):
                    m.d.sync += status.eq(Status.LINE_ERROR)
                    m.next = "DRAIN"
                with m.Elif(rx_fire):
                    with m.If(byte != crc):
                        m.d.sync += status.eq(Status.BAD_CRC)
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += status.eq(Status.OK)
                        m.next = "EXEC"
                with m.Elif(timed_out):
                    m.d.sync += status.eq(Status.TIMEOUT)
                    m.next = "RESPOND_ERR"
            with m.State("DRAIN"):  # swallow the rest of a bad frame, then answer
                m.d.comb += self.rx.ready.eq(1)
                with m.If(~rx_fire & idle):
                    m.next = "RESPOND_ERR"
            with m.State("RESPOND_ERR"):
                m.d.sync += [
                    rsp_len.eq(0),
                    rsp_from_mem.eq(0),
                    self.bad_frames.eq(self.bad_frames + 1),
                ]
                m.next = "TX_SYNC"
            with m.State("EXEC"):
                m.d.sync += [rsp_len.eq(0), rsp_from_mem.eq(0), rsp_regs.eq(0)]
                m.d.sync += ctr_value.eq(self.ctr_value)
                with m.Switch(cmd):
                    with m.Case(Cmd.WRITE):
                        with m.If(self.busy):
                            m.d.sync += status.eq(Status.BUSY)
                            m.next = "TX_SYNC"
                        with m.Else():
                            m.d.sync += cnt.eq(0)
                            m.next = "WREQ"
                    with m.Case(Cmd.READ):
                        m.d.sync += [rsp_len.eq(length), rsp_from_mem.eq(1), rleft.eq(0)]
                        m.next = "RREQ"
                    with m.Case(Cmd.RUN):
                        with m.If(self.busy):
                            m.d.sync += status.eq(Status.BUSY)
                        with m.Else():
                            m.d.comb += self.doorbell.eq(1)
                        m.next = "TX_SYNC"
                    with m.Case(Cmd.STATUS):
                        m.d.sync += [
                            rsp_len.eq(8),
                            rsp_regs.eq(
                                Cat(
                                    self.busy,
                                    self.done,
                                    self.error,
                                    self.flash_write_error,
                                    Const(0, 4),
                                    self.error_code,
                                    Const(0, 16),
                                    self.bad_frames,
                                    Const(0, 16),
                                )
                            ),
                        ]
                        m.next = "TX_SYNC"
                    with m.Case(Cmd.COUNTER):
                        m.next = "CTR"
                    with m.Case(Cmd.INFO):
                        info = self.info_bytes()
                        m.d.sync += [
                            rsp_len.eq(len(info)),
                            rsp_regs.eq(int.from_bytes(info, "little")),
                        ]
                        m.next = "TX_SYNC"
            with m.State("CTR"):  # one cycle for the counter mux to settle
                m.d.sync += [rsp_len.eq(8), rsp_regs.eq(self.ctr_value)]
                m.next = "TX_SYNC"
            with m.State("WREQ"):
                m.d.comb += [
                    self.mem.req.valid.eq(1),
                    self.mem.req.payload.addr.eq(addr),
                    self.mem.req.payload.beats.eq(length >> lmw),
                    self.mem.req.payload.write.eq(1),
                    wb_r.addr.eq(0),
                ]
                with m.If(self.mem.req.ready):
                    m.d.sync += cnt.eq(1)
                    m.next = "WDATA"
            with m.State("WDATA"):
                # wb_r.data holds word cnt-1 (read address was cnt-1 last cycle)
                m.d.comb += [
                    self.mem.wdata.valid.eq(1),
                    self.mem.wdata.payload.eq(wb_r.data),
                    wb_r.addr.eq(Mux(self.mem.wdata.ready, cnt, cnt - 1)),
                ]
                with m.If(self.mem.wdata.ready):
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == (length >> lmw)):
                        m.next = "TX_SYNC"
            with m.State("RREQ"):
                m.d.comb += [
                    self.mem.req.valid.eq(1),
                    self.mem.req.payload.addr.eq(addr),
                    self.mem.req.payload.beats.eq(length >> lmw),
                    self.mem.req.payload.write.eq(0),
                ]
                with m.If(self.mem.req.ready):
                    m.next = "TX_SYNC"
            # ---- response -------------------------------------------------------------
            with m.State("TX_SYNC"):
                m.d.comb += [self.tx.valid.eq(1), tx_byte.eq(SYNC_RSP)]
                with m.If(tx_fire):
                    m.d.sync += [tx_crc.eq(0), tx_idx.eq(0)]
                    m.next = "TX_HDR"
            with m.State("TX_HDR"):
                m.d.comb += self.tx.valid.eq(1)
                with m.Switch(tx_idx):
                    with m.Case(0):
                        m.d.comb += tx_byte.eq(status)
                    with m.Case(1):
                        m.d.comb += tx_byte.eq(rsp_len[:8])
                    with m.Default():
                        m.d.comb += tx_byte.eq(rsp_len[8:])
                with m.If(tx_fire):
                    m.d.sync += tx_idx.eq(tx_idx + 1)
                    with m.If(tx_idx == 2):
                        m.d.sync += tx_idx.eq(0)
                        with m.If(rsp_len == 0):
                            m.next = "TX_CRC"
                        with m.Elif(rsp_from_mem):
                            m.next = "TX_MEM"
                        with m.Else():
                            m.next = "TX_REGS"
            with m.State("TX_REGS"):
                m.d.comb += [self.tx.valid.eq(1), tx_byte.eq(rsp_regs[:8])]
                with m.If(tx_fire):
                    m.d.sync += [rsp_regs.eq(rsp_regs >> 8), tx_idx.eq(tx_idx + 1)]
                    with m.If(tx_idx + 1 == rsp_len):
                        m.next = "TX_CRC"
            with m.State("TX_MEM"):
                m.d.comb += [
                    self.tx.valid.eq(rleft != 0),
                    tx_byte.eq(rword[:8]),
                    self.mem.rdata.ready.eq(rleft == 0),
                ]
                with m.If(self.mem.rdata.valid & self.mem.rdata.ready):
                    m.d.sync += [rword.eq(self.mem.rdata.payload), rleft.eq(mw)]
                with m.If(tx_fire):
                    m.d.sync += [
                        rword.eq(rword >> 8),
                        rleft.eq(rleft - 1),
                        tx_idx.eq(tx_idx + 1),
                    ]
                    with m.If(tx_idx + 1 == rsp_len):
                        m.next = "TX_CRC"
            with m.State("TX_CRC"):
                m.d.comb += [self.tx.valid.eq(1), tx_byte.eq(tx_crc)]
                with m.If(tx_fire):
                    m.next = "IDLE"
        return m
