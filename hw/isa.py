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
    CONV = 5  # implicit-GEMM convolution (configurations with ``conv``)
    ADD = 6  # residual add of two int8 tensors (configurations with ``conv``)
    POOL = 7  # global average pooling (configurations with ``conv``)
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
    BAD_CONV = 8  # a kernel, stride or padding the convolution does not support
    MEM_TIMEOUT = 9  # the memory owed an answer for BuildOptions.mem_timeout cycles
    BUS_ERROR = 10  # the memory answered a transfer with an error (AXI SLVERR/DECERR)
    STALE_ACCUMULATE = 11  # accumulate, but the last GEMM/CONV did not hold its result
    # a GEMM/CONV read a PB tile that no CACHE filled from the address it would otherwise have
    # fetched (BuildOptions.pb_tags): reported when the command ends, before the next one
    PB_UNCACHED = 12


class Counter(enum.IntEnum):
    CYCLES = 0  # cycles from doorbell to done/error
    MAC_ACTIVE = 1  # cycles in which a row of activations entered the array
    RD_WEIGHT_BYTES = 2  # off-chip bytes read for weights (GEMM streaming and CACHE)
    RD_ACT_BYTES = 3  # off-chip bytes read by LOAD_ACT
    RD_CMD_BYTES = 4  # off-chip bytes read fetching commands
    WR_BYTES = 5  # off-chip bytes written (STORE_ACT)
    PB_READ_BYTES = 6  # bytes served by the Persistent Buffer to the array
    COMMANDS = 7  # commands executed
    DOORBELLS_DROPPED = 8  # doorbells rung while a program ran (ignored)


NUM_COUNTERS = len(Counter)

#: what each counter counts (docs/isa.md's table is rendered from this)
COUNTER_DOC: dict[Counter, str] = {
    Counter.CYCLES: "cycles from the doorbell to done/error",
    Counter.MAC_ACTIVE: "cycles in which a row of activations entered the array",
    Counter.RD_WEIGHT_BYTES: "off-chip bytes read for weights (GEMM/CONV streaming and CACHE)",
    Counter.RD_ACT_BYTES: "off-chip bytes read by LOAD_ACT",
    Counter.RD_CMD_BYTES: "off-chip bytes read fetching commands (= `COMMANDS` x "
    "max(32, mem_width): every decoded command was fetched whole)",
    Counter.WR_BYTES: "off-chip bytes written (STORE_ACT)",
    Counter.PB_READ_BYTES: "bytes the Persistent Buffer served to the array",
    Counter.COMMANDS: "commands decoded (including `DONE` and a command that fails its checks)",
    Counter.DOORBELLS_DROPPED: "doorbells rung while the program ran, which the command "
    "processor ignores (a host that does not wait for `busy` to fall; nonzero is its flag)",
}

#: what raises each error code (docs/isa.md's table is rendered from this: ``sushi docs``)
ERROR_DOC: dict[ErrorCode, str] = {
    ErrorCode.NONE: "no error (`done`, or still running)",
    ErrorCode.ILLEGAL_OPCODE: "unknown opcode (0 too: zeroed memory); CONV, ADD and POOL on a "
    "configuration without `conv`",
    ErrorCode.PB_RANGE: "PB tiles beyond the Persistent Buffer",
    ErrorCode.ACT_RANGE: "activation words beyond a buffer, or an output overlapping its own input",
    ErrorCode.MEM_RANGE: "off-chip bytes (or the next command) beyond `mem_bytes`",
    ErrorCode.BAD_SHAPE: "zero or oversized m/k/n, a PB block larger than the GEMM, a stride "
    "smaller than the tile count, zero words/tiles, `requant=1` with `mult=0`",
    ErrorCode.BAD_ALIGN: "an unaligned address or length",
    ErrorCode.BAD_ACCUMULATE: "`hold`/`accumulate` with more than one M-tile or N-tile",
    ErrorCode.BAD_CONV: "a kernel, stride or padding CONV does not support",
    ErrorCode.STALE_ACCUMULATE: "a GEMM with `accumulate=1` whose accumulator does not hold a "
    "result: no GEMM with `hold=1` since the reset, or a GEMM without `hold` or a CONV ran after "
    "it (it left partial sums), or a memory timeout abandoned one, or it failed `PB_UNCACHED`",
    ErrorCode.MEM_TIMEOUT: "the memory owed an answer (read data, or room for a request or "
    "write data) for `BuildOptions.mem_timeout` cycles: the command is abandoned at once",
    ErrorCode.BUS_ERROR: "the memory answered with an error (AXI SLVERR/DECERR): halts before "
    "the next command",
    ErrorCode.PB_UNCACHED: "a GEMM/CONV read a PB tile that holds no CACHEd copy of the off-chip "
    "tile it stands for (never cached since configuration, partly overwritten, or cached from "
    "another address); the command runs to its end, then halts (`BuildOptions.pb_tags`)",
}

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
# A feature map is stored as rows-byte words, one channel tile (``rows`` channels) of one pixel
# each, in [channel tile][y][x] order: word ``base + (ct*H + y)*W + x``. Conv weights are tiles of
# rows input channels x cols output channels of one kernel tap, stored [nt][ct][tap] with the taps
# in ring order (:func:`ring_taps`), so a SubNet's leading output channels, leading input channels
# and centre k' x k' crop are leading tile indices on each of the three axes.
CONV = data.StructLayout(
    {
        **_OP,
        "h": unsigned(8),  # input feature map height ...
        "w": unsigned(8),  # ... and width
        "c_in": unsigned(12),  # input channels used (the SubNet's leading slice)
        "c_out": unsigned(12),  # output channels
        "k": unsigned(3),  # kernel used: 1, 3, 5 or 7 (the centre crop of the stored tensor)
        "stride": unsigned(2),  # 1 or 2
        "pad": unsigned(2),  # zero padding, at most k // 2
        "a_buf": 1,  # input feature map: buffer ...
        "a_word": unsigned(INDEX_BITS),  # ... from this word
        "o_buf": 1,  # output feature map
        "o_word": unsigned(INDEX_BITS),
        "w_addr": unsigned(ADDR_BITS),  # off-chip tile (nt, ct, t) at index
        "w_cstride": unsigned(8),  # nt*w_nstride + ct*w_cstride + t
        "w_nstride": unsigned(DIM_BITS),
        "pb_tile": unsigned(INDEX_BITS),  # PB tile (nt, ct, t) of the cached block at
        "pb_cstride": unsigned(8),  # pb_tile + nt*pb_nstride + ct*pb_cstride + t
        "pb_nstride": unsigned(DIM_BITS),
        "pb_nt": unsigned(10),  # the cached block: nt < pb_nt, ct < pb_ct, t < pb_t
        "pb_ct": unsigned(10),
        "pb_t": unsigned(6),
        "mult": unsigned(MULT_BITS),
        "shift": unsigned(SHIFT_BITS),
        "relu": 1,
        "requant": 1,  # 0: int32 output, 4 words per pixel and channel tile
    }
)
ADD = data.StructLayout(  # OUT = sat8(relu((A*mult_a + B*mult_b + round) >> shift)), lane-wise
    {
        **_OP,
        "a_buf": 1,
        "a_word": unsigned(INDEX_BITS),
        "b_buf": 1,
        "b_word": unsigned(INDEX_BITS),
        "o_buf": 1,
        "o_word": unsigned(INDEX_BITS),
        "words": unsigned(INDEX_BITS),
        "mult_a": unsigned(MULT_BITS),
        "mult_b": unsigned(MULT_BITS),
        "shift": unsigned(SHIFT_BITS),
        "relu": 1,
    }
)
POOL = data.StructLayout(  # OUT[ct] = sat8((sum_p A[ct][p] * mult + round) >> shift)
    {
        **_OP,
        "a_buf": 1,
        "a_word": unsigned(INDEX_BITS),
        "o_buf": 1,
        "o_word": unsigned(INDEX_BITS),
        "pixels": unsigned(DIM_BITS),  # H*W of the feature map
        "tiles": unsigned(12),  # channel tiles
        "mult": unsigned(MULT_BITS),
        "shift": unsigned(SHIFT_BITS),
    }
)
KERNELS = (1, 3, 5, 7)
STRIDES = (1, 2)
for _layout in (CACHE, ACT_MOVE, GEMM, CONV, ADD, POOL):
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


def ring_taps(k: int) -> list[tuple[int, int]]:
    """The taps of a k x k kernel as (dy, dx) offsets from its centre, in the order weights are
    stored: ring by ring from the centre out (ring r = max(|dy|, |dx|)), row-major within a ring.
    The first k'*k' taps of a k x k kernel are its centre k' x k' crop."""
    if k not in KERNELS:
        raise ValueError(f"kernel {k} not supported; choose one of {KERNELS}")
    r = k // 2
    taps = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    return sorted(taps, key=lambda t: max(abs(t[0]), abs(t[1])))  # stable: row-major in a ring


def conv_out_size(size: int, k: int, stride: int, pad: int) -> int:
    """Output height (or width) of a convolution; below 1 when the kernel does not fit."""
    return (size + 2 * pad - k) // stride + 1


def conv(
    *,
    h: int,
    w: int,
    c_in: int,
    c_out: int,
    k: int,
    stride: int,
    pad: int,
    a_buf: int,
    a_word: int,
    o_buf: int,
    o_word: int,
    w_addr: int,
    w_cstride: int,
    w_nstride: int,
    pb_tile: int = 0,
    pb_cstride: int = 0,
    pb_nstride: int = 0,
    pb_nt: int = 0,
    pb_ct: int = 0,
    pb_t: int = 0,
    requant: tuple[int, int] | None = None,
    relu: bool = False,
) -> bytes:
    """One convolution (docs/isa.md, CONV). Fields are packed as given: the accelerator checks
    kernel, stride, padding and ranges (so illegal commands can be assembled for tests)."""
    fields = dict(
        h=h, w=w, c_in=c_in, c_out=c_out, k=k, stride=stride, pad=pad, a_buf=a_buf,
        a_word=a_word, o_buf=o_buf, o_word=o_word, w_addr=w_addr, w_cstride=w_cstride,
        w_nstride=w_nstride, pb_tile=pb_tile, pb_cstride=pb_cstride, pb_nstride=pb_nstride,
        pb_nt=pb_nt, pb_ct=pb_ct, pb_t=pb_t,
    )  # fmt: skip
    for name, v in fields.items():
        _fits(v, CONV[name].width, name)
    mult, shift = requant if requant is not None else (1, 0)
    if requant is not None:
        check_requant(mult, shift)
    return _pack(
        CONV,
        {
            "opcode": Op.CONV,
            **fields,
            "mult": mult,
            "shift": shift,
            "relu": int(relu),
            "requant": int(requant is not None),
        },
    )


def add(
    *,
    a_buf: int,
    a_word: int,
    b_buf: int,
    b_word: int,
    o_buf: int,
    o_word: int,
    words: int,
    mult_a: int,
    mult_b: int,
    shift: int,
    relu: bool = False,
) -> bytes:
    """Residual add of ``words`` words (docs/isa.md, ADD)."""
    fields = dict(
        a_buf=a_buf, a_word=a_word, b_buf=b_buf, b_word=b_word, o_buf=o_buf, o_word=o_word,
        words=words, mult_a=mult_a, mult_b=mult_b, shift=shift,
    )  # fmt: skip
    for name, v in fields.items():
        _fits(v, ADD[name].width, name)
    return _pack(ADD, {"opcode": Op.ADD, **fields, "relu": int(relu)})


def pool(
    *,
    a_buf: int,
    a_word: int,
    o_buf: int,
    o_word: int,
    pixels: int,
    tiles: int,
    mult: int,
    shift: int,
) -> bytes:
    """Global average pooling of ``tiles`` channel tiles of ``pixels`` words each (docs/isa.md)."""
    fields = dict(
        a_buf=a_buf, a_word=a_word, o_buf=o_buf, o_word=o_word, pixels=pixels, tiles=tiles,
        mult=mult, shift=shift,
    )  # fmt: skip
    for name, v in fields.items():
        _fits(v, POOL[name].width, name)
    return _pack(POOL, {"opcode": Op.POOL, **fields})


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
    Op.CONV: CONV,
    Op.ADD: ADD,
    Op.POOL: POOL,
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
