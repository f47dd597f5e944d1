"""The ISA document and the assembler agree with the layouts the RTL decodes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sushi_hw import isa

DOC = (Path(__file__).resolve().parents[2] / "docs" / "isa.md").read_text()


def _doc_table(heading: str) -> list[tuple[str, int, int]]:
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [
        (n, int(o), int(w)) for n, o, w in re.findall(r"\| `(\w+)` \| (\d+) \| (\d+) \|", section)
    ]


@pytest.mark.parametrize(
    "heading,layout",
    [
        ("GEMM", isa.GEMM),
        ("CACHE", isa.CACHE),
        ("LOAD_ACT / STORE_ACT", isa.ACT_MOVE),
        ("CONV", isa.CONV),
        ("ADD", isa.ADD),
        ("POOL", isa.POOL),
    ],
)
def test_doc_tables_match_layouts(heading, layout):
    assert _doc_table(heading) == [(n, f.offset, f.width) for n, f in layout]


def test_assembler_round_trip():
    raw = isa.gemm(
        m=3,
        k=17,
        n=9,
        a_buf=1,
        a_word=5,
        o_buf=0,
        o_word=7,
        w_addr=0x1234_5678,
        w_stride=3,
        pb_tile=11,
        pb_stride=2,
        pb_kt=2,
        pb_nt=1,
        requant=(513, 9),
        relu=True,
        hold=True,
    )
    assert len(raw) == isa.CMD_BYTES
    op, f = isa.decode(raw)
    assert op == isa.Op.GEMM
    assert (f["m"], f["k"], f["n"], f["a_buf"], f["a_word"], f["o_word"]) == (3, 17, 9, 1, 5, 7)
    assert (f["w_addr"], f["w_stride"], f["pb_tile"], f["pb_kt"]) == (0x12345678, 3, 11, 2)
    assert (f["mult"], f["shift"], f["relu"], f["requant"], f["hold"]) == (513, 9, 1, 1, 1)
    assert f["accumulate"] == 0
    assert isa.decode(isa.cache(64, 3, 5)) == (
        isa.Op.CACHE,
        {"opcode": 1, "mem_addr": 64, "pb_tile": 3, "tiles": 5},
    )
    with pytest.raises(ValueError, match="illegal opcode 9"):
        isa.decode(isa.raw(9))


def test_assembler_rejects_fields_that_do_not_fit():
    with pytest.raises(ValueError, match="mem_addr"):
        isa.cache(1 << 32, 0, 1)
    with pytest.raises(ValueError, match="m = 70000"):
        isa.gemm(m=70000, k=1, n=1, a_buf=0, a_word=0, o_buf=1, o_word=0, w_addr=0, w_stride=1)
    with pytest.raises(ValueError, match="multiplier"):
        isa.gemm(
            m=1,
            k=1,
            n=1,
            a_buf=0,
            a_word=0,
            o_buf=1,
            o_word=0,
            w_addr=0,
            w_stride=1,
            requant=(0, 1),
        )
