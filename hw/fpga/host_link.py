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
from sushi_hw.config import AccelConfig, clog2
from sushi_hw.control import ControlSignature
from sushi_hw.mem_port import MEM_ADDR_BITS, mem_port_signature

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
                "ctrl": Out(ControlSignature()),  # the accelerator's doorbell and status
                "flash_write_error": In(1),
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
        # The interconnect and the accelerator only look at the address below clog2(mem_bytes)
        # and at whether anything above is set: keep those bits and one sticky "above" bit.
        abits = min(MEM_ADDR_BITS, max(clog2(self.cfg.mem_bytes), len(self.ctrl.ctr_sel)))

        # write payload buffer, one memory-port beat per word, filled from the highest word
        # down (see PAYLOAD) so that one down-counter addresses it while filling and draining
        m.submodules.wbuf = wbuf = Memory(shape=8 * mw, depth=MAX_WRITE // mw, init=[])
        wb_w = wbuf.write_port(granularity=8)  # bytes land in their lane: no beat register
        wb_r = wbuf.read_port()  # data holds while en is low

        cmd = Signal(3)
        cmd_bad = Signal()
        addr = Signal(abits)
        addr_above = Signal()
        length = Signal(16)
        idx = Signal(range(8))  # header byte, received or sent
        crc = Signal(8)  # of the request, then of the response: they never overlap
        status = Signal(3)  # every Status fits
        # One down-counter for everything that counts: bytes of the WRITE payload to receive,
        # beats to hand to memory (WDATA), bytes of the response payload to send. It holds the
        # response length while the header goes out.
        rem = Signal(16)
        beat_step = Signal()  # count rem down by mw bytes instead of 1
        dec = Signal(16)
        m.d.comb += dec.eq(rem - Mux(beat_step, mw, 1))
        rem_dec, rem_len, rem_set = Signal(), Signal(), Signal()
        rem_val = Signal(5)  # with rem_set: 0, 8 or 16
        # rem == 0 and rem == 1 kept in registers beside rem: the compares sat between rem
        # and the FSM's enables (behind the UART's ready), an iCE40 critical path
        rem_zero, rem_one = Signal(init=1), Signal()
        # the write buffer's next word to hand to memory, in a register that counts down beside
        # rem: its read address was rem's subtract, an ECP5 critical path into the LUT RAM
        wb_next = Signal(range(MAX_WRITE // mw))
        wb_step = Signal()
        with m.If(rem_len):
            m.d.sync += wb_next.eq((length - 1)[lmw:])  # word (length-1) >> lmw: the last
        with m.Elif(wb_step):
            m.d.sync += wb_next.eq(wb_next - 1)
        with m.If(rem_len):
            m.d.sync += [rem.eq(length), rem_zero.eq(length == 0), rem_one.eq(length == 1)]
        with m.Elif(rem_set):
            m.d.sync += [rem.eq(rem_val), rem_zero.eq(rem_val == 0), rem_one.eq(rem_val == 1)]
        with m.Elif(rem_dec):
            # "dec == 0 / 1" as compares of rem itself, beside the subtract, not after it
            m.d.sync += [
                rem.eq(dec),
                rem_zero.eq(Mux(beat_step, rem == mw, rem == 1)),
                rem_one.eq(Mux(beat_step, rem == mw + 1, rem == 2)),
            ]
        # STATUS and COUNTER payload, shifted out LSB first; counters above counter_bits and
        # STATUS above its bad-frame count are zeros, which the shift brings in
        sr = Signal(max(48, -(-self.cfg.counter_bits // 8) * 8))
        sr_load, sr_shift = Signal(), Signal()
        quiet_max = max(self.timeout, self.idle_cycles)
        quiet = Signal(range(quiet_max + 1))

        rx_fire = self.rx.valid & self.rx.ready
        byte = self.rx.payload
        # cycles since the last byte; sticky flags instead of magnitude compares, so the
        # counter may wrap once both are set
        timed_out, idle = Signal(), Signal()
        with m.If(rx_fire):
            m.d.sync += [quiet.eq(0), timed_out.eq(0), idle.eq(0)]
        with m.Else():
            m.d.sync += quiet.eq(quiet + 1)
            with m.If(quiet == self.timeout - 1):
                m.d.sync += timed_out.eq(1)
            with m.If(quiet == self.idle_cycles - 1):
                m.d.sync += idle.eq(1)

        tx_byte = Signal(8)
        m.d.comb += self.tx.payload.eq(tx_byte)
        tx_fire = self.tx.valid & self.tx.ready
        crc_tx = Signal()  # the CRC takes the byte sent, not the byte received

        # strobes from the FSM to the datapath: one load value and an enable per register
        # rather than a mux per state
        crc_clr, crc_upd, idx_clr, idx_inc, status_set = (Signal() for _ in range(5))
        status_val = Signal.like(status)
        # the CRC takes its byte and strobes from registers, a cycle late: the response byte
        # mux (a memory beat's lane) and the CRC's XOR tree were the iCE40's critical path in
        # series. ``crc_late`` marks the cycle in which ``crc`` is not yet up to date; the CRC
        # byte is neither sent nor compared in it.
        crc_byte, crc_clr_q, crc_upd_q = Signal(8), Signal(), Signal()
        m.d.sync += [
            crc_byte.eq(Mux(crc_tx, tx_byte, byte)),
            crc_clr_q.eq(crc_clr),
            crc_upd_q.eq(crc_upd),
        ]
        crc_late = crc_clr_q | crc_upd_q
        with m.If(crc_clr_q):
            m.d.sync += crc.eq(0)
        with m.Elif(crc_upd_q):
            m.d.sync += crc.eq(_crc8_hw(crc, crc_byte))
        with m.If(idx_clr):
            m.d.sync += idx.eq(0)
        with m.Elif(idx_inc):
            m.d.sync += idx.eq(idx + 1)
        with m.If(status_set):
            m.d.sync += status.eq(status_val)

        def set_status(v: Status) -> None:
            m.d.comb += [status_set.eq(1), status_val.eq(v)]

        aligned = (addr[:lmw] == 0) & (length[:lmw] == 0)
        # the frame's argument checks, registered every cycle (valid in CHECK, a cycle after
        # the last header byte): the compares and the status update were the iCE40's
        # critical path when they ran in series
        len_zero, len_over_w, len_over_r, len_aligned = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [
            len_zero.eq(length == 0),
            len_over_w.eq(length > MAX_WRITE),
            len_over_r.eq(length > MAX_READ),
            len_aligned.eq(aligned),
        ]
        m.d.comb += [self.ctrl.prog_addr.eq(Cat(addr, addr_above)), self.ctrl.ctr_sel.eq(addr)]
        m.d.comb += [
            self.mem.req.payload.addr.eq(Cat(addr, addr_above)),
            self.mem.req.payload.beats.eq(length >> lmw),
        ]

        # INFO is a constant: send byte k when rem == 16 - k
        info = self.info_bytes()
        assert len(info) == 16
        info_byte = Signal(8)
        with m.Switch(rem[:4]):
            for r in range(16):
                with m.Case(r):
                    m.d.comb += info_byte.eq(info[(16 - r) % 16])

        # READ data: byte k of a beat goes out when rem[:lmw] == -k mod mw (rem is a multiple
        # of mw at the beat's first byte); the beat is taken with its last byte
        rd = self.mem.rdata
        if mw == 1:
            lane, mem_byte, beat_last = Const(0), rd.payload, Const(1)
        else:
            lane = (-rem[:lmw])[:lmw]
            mem_byte = rd.payload.word_select(lane, 8)
            beat_last = rem[:lmw] == 1

        def rx_errors() -> None:
            """Line error or silence inside a frame."""
            with m.If(self.rx_error):
                set_status(Status.LINE_ERROR)
                m.next = "DRAIN"
            with m.Elif(~rx_fire & timed_out):
                set_status(Status.TIMEOUT)
                m.next = "RESPOND_ERR"

        status_word = Cat(
            self.ctrl.busy,
            self.ctrl.done,
            self.ctrl.error,
            self.flash_write_error,
            Const(0, 4),
            self.ctrl.error_code,
            Const(0, 16),
            self.bad_frames,
            Const(0, 16),
        )
        assert Cmd.STATUS & 1 == 0 and Cmd.COUNTER & 1 == 1
        with m.If(sr_load):
            m.d.sync += sr.eq(Mux(cmd[0], self.ctrl.ctr_value, status_word))
        with m.Elif(sr_shift):
            m.d.sync += sr.eq(sr >> 8)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(rx_fire & (byte == SYNC_REQ)):
                    m.d.sync += addr_above.eq(0)
                    m.d.comb += [idx_clr.eq(1), crc_clr.eq(1)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(rx_fire):
                    m.d.comb += [crc_upd.eq(1), idx_inc.eq(1)]
                    with m.Switch(idx):
                        with m.Case(0):
                            valid_cmds = [int(c) for c in Cmd]
                            assert max(valid_cmds) < 8
                            m.d.sync += [
                                cmd.eq(byte[:3]),
                                cmd_bad.eq(
                                    (byte[3:] != 0) | ~Cat(byte[:3] == c for c in valid_cmds).any()
                                ),
                            ]
                        for i in range(4):
                            with m.Case(1 + i):
                                lo, hi = 8 * i, min(8 * i + 8, abits)
                                if hi > lo:
                                    m.d.sync += addr[lo:hi].eq(byte)
                                if hi - lo < 8:
                                    above = byte[max(0, hi - lo) :] != 0
                                    m.d.sync += addr_above.eq(addr_above | above)
                        for i in range(2):
                            with m.Case(5 + i):
                                m.d.sync += length[8 * i : 8 * i + 8].eq(byte)
                    with m.If(idx == 6):
                        m.next = "CHECK_PREP"
                rx_errors()
            with m.State("CHECK_PREP"):  # the length compares settle into flip-flops
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += idx_clr.eq(1)  # for the response
                m.d.comb += rem_len.eq(1)
                bad_arg = Signal()
                with m.Switch(cmd):
                    with m.Case(Cmd.WRITE):
                        m.d.comb += bad_arg.eq(len_zero | len_over_w | ~len_aligned)
                    with m.Case(Cmd.READ):
                        m.d.comb += bad_arg.eq(len_zero | len_over_r | ~len_aligned)
                    with m.Default():
                        m.d.comb += bad_arg.eq(~len_zero)
                with m.If(cmd_bad):
                    set_status(Status.BAD_CMD)
                    m.next = "DRAIN"
                with m.Elif(bad_arg):
                    set_status(Status.BAD_ARG)
                    m.next = "DRAIN"
                with m.Elif(cmd == Cmd.WRITE):
                    m.next = "PAYLOAD"
                with m.Else():
                    m.next = "CRC"
            with m.State("PAYLOAD"):
                # byte j arrives with rem = length - j and goes to lane j % mw of word
                # nbeats-1 - j // mw, which is (rem-1) >> lmw
                m.d.comb += self.rx.ready.eq(1)
                m.d.comb += [wb_w.data.eq(byte.replicate(mw)), wb_w.addr.eq(dec[lmw:])]
                with m.If(rx_fire):
                    m.d.comb += wb_w.en.eq(1 << lane)
                    m.d.comb += crc_upd.eq(1)
                    m.d.comb += rem_dec.eq(1)
                    with m.If(rem_one):
                        m.next = "CRC"
                rx_errors()
            with m.State("CRC"):
                m.d.comb += self.rx.ready.eq(~crc_late)
                with m.If(rx_fire):
                    with m.If(byte != crc):
                        set_status(Status.BAD_CRC)
                        m.next = "DRAIN"
                    with m.Else():
                        set_status(Status.OK)
                        m.next = "EXEC"
                rx_errors()
            with m.State("DRAIN"):  # swallow the rest of a bad frame, then answer
                m.d.comb += self.rx.ready.eq(1)
                with m.If(~rx_fire & idle):
                    m.next = "RESPOND_ERR"
            with m.State("RESPOND_ERR"):
                m.d.comb += idx_clr.eq(1)
                m.d.sync += self.bad_frames.eq(self.bad_frames + 1)
                m.d.comb += rem_set.eq(1)  # to 0
                m.next = "TX"
            with m.State("EXEC"):
                m.d.comb += [sr_load.eq(1), rem_set.eq(1)]
                m.next = "TX"
                with m.Switch(cmd):
                    with m.Case(Cmd.WRITE, Cmd.RUN):
                        with m.If(self.ctrl.busy):
                            set_status(Status.BUSY)
                        with m.Elif(cmd == Cmd.RUN):
                            m.d.comb += self.ctrl.doorbell.eq(1)
                        with m.Else():
                            m.d.comb += rem_len.eq(1)
                            m.next = "REQ"
                    with m.Case(Cmd.READ):
                        m.d.comb += rem_len.eq(1)
                        m.next = "REQ"
                    with m.Case(Cmd.STATUS, Cmd.COUNTER):
                        m.d.comb += rem_val.eq(8)
                    with m.Case(Cmd.INFO):
                        m.d.comb += rem_val.eq(len(info))
            with m.State("REQ"):
                # WRITE: rem = length; fetch the first beat, word (length-1) >> lmw
                is_write = cmd == Cmd.WRITE
                m.d.comb += [
                    self.mem.req.valid.eq(1),
                    self.mem.req.payload.write.eq(is_write),
                    wb_r.addr.eq(wb_next),
                    wb_r.en.eq(1),
                ]
                with m.If(self.mem.req.ready):
                    m.d.comb += [rem_dec.eq(is_write), wb_step.eq(is_write)]
                    with m.If(is_write):
                        m.next = "WDATA"
                    with m.Else():
                        m.next = "TX"
            with m.State("WDATA"):
                # rem = length-1 - b*mw at beat b, whose word rem >> lmw is on wb_r.data;
                # wb_next = (rem >> lmw) - 1, the next beat's word
                m.d.comb += [
                    beat_step.eq(1),
                    self.mem.wdata.valid.eq(1),
                    self.mem.wdata.payload.eq(wb_r.data),
                    wb_r.addr.eq(wb_next),
                    wb_r.en.eq(self.mem.wdata.ready),
                ]
                with m.If(self.mem.wdata.ready):
                    m.d.comb += [rem_dec.eq(1), wb_step.eq(1)]
                    with m.If(rem[lmw:] == 0):
                        m.d.comb += rem_set.eq(1)  # to 0: no response payload
                        m.next = "TX"
            # ---- response: rem holds its payload length --------------------------------
            with m.State("TX"):
                # idx 0 sync, 1 status, 2 and 3 length, 4 payload while rem != 0, then crc
                m.d.comb += [self.tx.valid.eq(1), crc_tx.eq(1)]
                with m.Switch(idx):
                    with m.Case(0):
                        m.d.comb += tx_byte.eq(SYNC_RSP)
                    with m.Case(1):
                        m.d.comb += tx_byte.eq(status)
                    with m.Case(2):
                        m.d.comb += tx_byte.eq(rem[:8])
                    with m.Case(3):
                        m.d.comb += tx_byte.eq(rem[8:])
                    with m.Default():
                        with m.If(rem_zero):
                            m.d.comb += [self.tx.valid.eq(~crc_late), tx_byte.eq(crc)]
                        with m.Elif(cmd == Cmd.READ):
                            m.d.comb += [
                                self.tx.valid.eq(rd.valid),
                                tx_byte.eq(mem_byte),
                                rd.ready.eq(self.tx.ready & beat_last),
                            ]
                        with m.Elif(cmd == Cmd.INFO):
                            m.d.comb += tx_byte.eq(info_byte)
                        with m.Else():
                            m.d.comb += tx_byte.eq(sr[:8])
                with m.If(tx_fire):
                    # the CRC starts after the sync byte and is not needed after its own
                    m.d.comb += [crc_upd.eq(1), crc_clr.eq(idx == 0)]
                    with m.If(idx != 4):
                        m.d.comb += idx_inc.eq(1)
                    with m.Elif(~rem_zero):
                        m.d.comb += [rem_dec.eq(1), sr_shift.eq(1)]
                    with m.Else():
                        m.next = "IDLE"
        return m
