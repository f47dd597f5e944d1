"""SushiAccel's command set: the one definition of the encoding.

The RTL decoder views a fetched command through these layouts, and the host assembler builds
commands with the same layouts (``layout.const``), so the two cannot drift apart. Every command is
:data:`CMD_BYTES` bytes, little-endian, opcode in bits [3:0]. docs/isa.md is the reference.
"""

import enum

from amaranth.hdl import unsigned
from amaranth.lib import data

from .reference import MULT_BITS, SHIFT_BITS, check_requant

CMD_BYTES = 32
CMD_BITS = 8 * CMD_BYTES
ADDR_BITS = 32  # off-chip byte address
INDEX_BITS = 20  # on-chip word / tile index
DIM_BITS = 16  # GEMM M, K, N and tile counts


class Op(enum.IntEnum):
    CACHE = 1  # off-chip -> Persistent Buffer
    LOAD_ACT = 2  # off-chip -> activation buffer
    STORE_ACT = 3  # activation buffer -> off-chip
    GEMM = 4
    DONE = 15


class ErrorCode(enum.IntEnum):
    NONE = 0
    ILLEGAL_OPCODE = 1
    PB_RANGE = 2  # PB tiles outside the Persistent Buffer
    ACT_RANGE = 3  # activation words outside the buffer
    MEM_RANGE = 4  # off-chip bytes outside memory (incl. fetching past its end)
    BAD_SHAPE = 5  # zero or oversized dimension, or a PB block larger than the GEMM
    BAD_ALIGN = 6  # off-chip address or length not a multiple of the memory width
    BAD_ACCUMULATE = 7  # accumulate/hold with more than one M-tile


class Counter(enum.IntEnum):
    CYCLES = 0  # cycles from doorbell to done/error
    MAC_ACTIVE = 1  # cycles in which a row of activations entered the array
    RD_WEIGHT_BYTES = 2  # off-chip bytes read for weights (GEMM streaming and CACHE)
    RD_ACT_BYTES = 3  # off-chip bytes read by LOAD_ACT
    RD_CMD_BYTES = 4  # off-chip bytes read fetching commands
    WR_BYTES = 5  # off-chip bytes written (STORE_ACT)
    PB_READ_BYTES = 6  # bytes served by the Persistent Buffer to the array
    COMMANDS = 7  # commands executed


NUM_COUNTERS = len(Counter)

_OP = {"opcode": unsigned(4)}

CACHE = data.StructLayout(
    {
        **_OP,
        "mem_addr": unsigned(ADDR_BITS),
        "pb_tile": unsigned(INDEX_BITS),
        "tiles": unsigned(INDEX_BITS),
    }
)
ACT_MOVE = data.StructLayout(  # LOAD_ACT and STORE_ACT
    {
        **_OP,
        "mem_addr": unsigned(ADDR_BITS),
        "buf": 1,
        "word": unsigned(INDEX_BITS),
        "words": unsigned(INDEX_BITS),
    }
)
GEMM = data.StructLayout(
    {
        **_OP,
        "m": unsigned(DIM_BITS),
        "k": unsigned(DIM_BITS),
        "n": unsigned(DIM_BITS),
        "a_buf": 1,  # A is read from activation buffer a_buf ...
        "a_word": unsigned(INDEX_BITS),  # ... starting at this word
        "o_buf": 1,  # the output is written to o_buf ...
        "o_word": unsigned(INDEX_BITS),  # ... starting at this word
        "w_addr": unsigned(ADDR_BITS),  # off-chip tiles [nt][kt]: tile (nt,kt) at index
        "w_stride": unsigned(DIM_BITS),  # nt*w_stride + kt (w_stride >= KT)
        "pb_tile": unsigned(INDEX_BITS),  # PB tile (nt,kt) of the cached block is at
        "pb_stride": unsigned(DIM_BITS),  # pb_tile + nt*pb_stride + kt
        "pb_kt": unsigned(DIM_BITS),  # the leading pb_kt x pb_nt tiles come from the PB
        "pb_nt": unsigned(DIM_BITS),
        "mult": unsigned(MULT_BITS),
        "shift": unsigned(SHIFT_BITS),
        "relu": 1,
        "requant": 1,  # 0: int32 output, 4 words per row
        "accumulate": 1,  # start from the accumulator (the previous GEMM's held result)
        "hold": 1,  # keep the int32 result in the accumulator, write nothing
    }
)
for _layout in (CACHE, ACT_MOVE, GEMM):
    assert _layout.size <= CMD_BITS


def _pack(layout: data.StructLayout, fields: dict) -> bytes:
    value = layout.const(fields).as_value().value
    return value.to_bytes(CMD_BYTES, "little")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _fits(v: int, bits: int, what: str) -> None:
    _check(isinstance(v, int) and 0 <= v < (1 << bits), f"{what} = {v!r} does not fit {bits} bits")


def cache(mem_addr: int, pb_tile: int, tiles: int) -> bytes:
    """Copy ``tiles`` weight tiles (rows*cols bytes each) from ``mem_addr`` to the PB."""
    _fits(mem_addr, ADDR_BITS, "mem_addr")
    _fits(pb_tile, INDEX_BITS, "pb_tile")
    _fits(tiles, INDEX_BITS, "tiles")
    return _pack(
        CACHE, {"opcode": Op.CACHE, "mem_addr": mem_addr, "pb_tile": pb_tile, "tiles": tiles}
    )


def _act_move(op: Op, mem_addr: int, buf: int, word: int, words: int) -> bytes:
    _fits(mem_addr, ADDR_BITS, "mem_addr")
    _fits(buf, 1, "buf")
    _fits(word, INDEX_BITS, "word")
    _fits(words, INDEX_BITS, "words")
    return _pack(
        ACT_MOVE, {"opcode": op, "mem_addr": mem_addr, "buf": buf, "word": word, "words": words}
    )


def load_act(mem_addr: int, buf: int, word: int, words: int) -> bytes:
    """Copy ``words`` rows-byte words from off-chip ``mem_addr`` into activation buffer ``buf``."""
    return _act_move(Op.LOAD_ACT, mem_addr, buf, word, words)


def store_act(mem_addr: int, buf: int, word: int, words: int) -> bytes:
    return _act_move(Op.STORE_ACT, mem_addr, buf, word, words)


def gemm(
    *,
    m: int,
    k: int,
    n: int,
    a_buf: int,
    a_word: int,
    o_buf: int,
    o_word: int,
    w_addr: int,
    w_stride: int,
    pb_tile: int = 0,
    pb_stride: int = 0,
    pb_kt: int = 0,
    pb_nt: int = 0,
    requant: tuple[int, int] | None = None,
    relu: bool = False,
    accumulate: bool = False,
    hold: bool = False,
) -> bytes:
    """One GEMM. Weight tile (nt, kt) is off-chip tile ``nt*w_stride + kt`` after ``w_addr``,
    or, when ``nt < pb_nt`` and ``kt < pb_kt``, PB tile ``pb_tile + nt*pb_stride + kt``."""
    for name, v in (
        ("m", m),
        ("k", k),
        ("n", n),
        ("pb_kt", pb_kt),
        ("pb_nt", pb_nt),
        ("w_stride", w_stride),
        ("pb_stride", pb_stride),
    ):
        _fits(v, DIM_BITS, name)
    for name, v in (("a_word", a_word), ("o_word", o_word), ("pb_tile", pb_tile)):
        _fits(v, INDEX_BITS, name)
    _fits(w_addr, ADDR_BITS, "w_addr")
    mult, shift = requant if requant is not None else (1, 0)
    if requant is not None:
        check_requant(mult, shift)
    return _pack(
        GEMM,
        {
            "opcode": Op.GEMM,
            "m": m,
            "k": k,
            "n": n,
            "a_buf": a_buf,
            "a_word": a_word,
            "o_buf": o_buf,
            "o_word": o_word,
            "w_addr": w_addr,
            "w_stride": w_stride,
            "pb_tile": pb_tile,
            "pb_stride": pb_stride,
            "pb_kt": pb_kt,
            "pb_nt": pb_nt,
            "mult": mult,
            "shift": shift,
            "relu": int(relu),
            "requant": int(requant is not None),
            "accumulate": int(accumulate),
            "hold": int(hold),
        },
    )


def done() -> bytes:
    return (int(Op.DONE)).to_bytes(CMD_BYTES, "little")


def raw(opcode: int) -> bytes:
    """A command with an arbitrary opcode (for testing the illegal-opcode path)."""
    return (opcode & 0xF).to_bytes(CMD_BYTES, "little")


LAYOUTS = {
    Op.CACHE: CACHE,
    Op.LOAD_ACT: ACT_MOVE,
    Op.STORE_ACT: ACT_MOVE,
    Op.GEMM: GEMM,
    Op.DONE: data.StructLayout(_OP),
}


def decode(raw: bytes) -> tuple[Op, dict[str, int]]:
    """Disassemble one command into its opcode and field values (for tools and tests)."""
    if len(raw) != CMD_BYTES:
        raise ValueError(f"a command is {CMD_BYTES} bytes, got {len(raw)}")
    value = int.from_bytes(raw, "little")
    try:
        op = Op(value & 0xF)
    except ValueError:
        raise ValueError(f"illegal opcode {value & 0xF}") from None
    fields = {name: (value >> f.offset) & ((1 << f.width) - 1) for name, f in LAYOUTS[op]}
    return op, fields
