# amaranth: UnusedElaboratable=no
"""RegisteredRam (``sushi_hw.bram``): DP16KD instances with their output register, against the
plain Amaranth RAM and a Python model, under Icarus with our DP16KD model (see its header)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from icarus_harness import Flat, run_side_by_side
from sushi_hw.bram import BLOCKS_PER_COPY, RegisteredRam, dp16kd_mode
from sushi_hw.build_options import SIMULATION, BuildOptions

MODEL = Path(__file__).with_name("dp16kd_model.v")
SEED = int(os.environ.get("SUSHI_BRAM_SEED", "0")) or None


class _Ports(wiring.Component):
    """RegisteredRam with flat ports, for :class:`Flat`."""

    def __init__(
        self,
        width: int,
        depth: int,
        write_registered: bool,
        addr_registered: bool,
        opts: BuildOptions = SIMULATION,
    ):
        self.ram = RegisteredRam(
            width,
            depth,
            write_registered=write_registered,
            addr_registered=addr_registered,
            opts=opts,
        )
        super().__init__(
            {
                "w_en": In(1),
                "w_addr": In(range(depth)),
                "w_data": In(width),
                "r_en": In(1),
                "r_addr": In(range(depth)),
                "r_data": Out(width),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = self.ram
        m.d.comb += [
            ram.write.en.eq(self.w_en),
            ram.write.addr.eq(self.w_addr),
            ram.write.data.eq(self.w_data),
            ram.read.en.eq(self.r_en),
            ram.read.addr.eq(self.r_addr),
            self.r_data.eq(ram.read.data),
        ]
        return m


# (width, depth, write_registered, addr_registered): each DP16KD aspect ratio, widths that do
# and do not divide into blocks, the registered write port and read address on both kinds of
# RAM, and a RAM of more than BLOCKS_PER_COPY blocks (copies of the registered address)
CASES = [
    (20, 600, False, False),
    (64, 2048, False, False),
    (16, 4096, False, False),
    (6, 8192, False, False),
    (3, 16384, False, False),
    (37, 1024, False, False),
    (37, 1024, True, False),
    (6, 8192, True, False),
    (37, 1024, False, True),
    (20, 8192, True, True),
]


@pytest.mark.parametrize("width,depth,write_registered,addr_registered", CASES)
def test_dp16kd_outreg_matches_the_plain_ram(
    tmp_path, request, width: int, depth: int, write_registered: bool, addr_registered: bool
):
    seed = SEED if SEED is not None else int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    print(f"seed {seed} (rerun with SUSHI_BRAM_SEED={seed})")
    rng = random.Random(seed)
    ports = ["w_en", "w_addr", "w_data", "r_en", "r_addr"]
    dut, ref = (
        Flat(_Ports(width, depth, write_registered, addr_registered, opts), ports, ["r_data"])
        for opts in (BuildOptions(ecp5_bram=True), SIMULATION)
    )
    abits = (depth - 1).bit_length()
    # a small address window, so that reads hit written words often
    window = rng.sample(range(depth), min(depth, 48)) + [0, depth - 1]
    n, wl, rl = 1500, int(write_registered), int(addr_registered)  # port -> RAM cycles
    writes = [(rng.random() < 0.5, rng.choice(window), rng.randrange(1 << width)) for _ in range(n)]
    reads = []
    for t in range(n):
        r_en, r_addr = rng.random() < 0.7 or t == 0, rng.choice(window)
        # a read of the word written at the RAM in the same cycle is not defined: never done
        w = t + rl - wl  # the write that reaches the RAM with this read
        if r_en and 0 <= w < n and writes[w][0] and r_addr == writes[w][1]:
            r_addr = next(a for a in window if a != r_addr)
        reads.append((r_en, r_addr))
    stim, expect = [], []
    mem, latch, out = [0] * depth, 0, 0
    at_ram = lambda seq, lat, t, off: seq[t - lat] if t >= lat else off  # noqa: E731
    for t in range(n):
        lo, packed = 0, 0  # Flat packs the ports LSB first, in order
        values = (*writes[t], *reads[t])
        for v, bits in zip(values, (1, abits, width, 1, abits), strict=True):
            packed |= int(v) << lo
            lo += bits
        stim.append(packed)
        expect.append(out)  # sampled before this cycle's edge
        r_en, r_addr = at_ram(reads, rl, t, (False, 0))
        w_en, w_addr, w_data = at_ram(writes, wl, t, (False, 0, 0))
        latch, out = (mem[r_addr] if r_en else latch), latch
        if w_en:
            mem[w_addr] = w_data
    # the plain RAM's read port register has no power-up value in Verilog: cycle 1 is undefined
    skip = 2 + rl
    got, want, text = run_side_by_side(tmp_path, dut, ref, stim, [MODEL], undefined_cycles=skip)
    bits = dp16kd_mode(depth)[0]
    blocks = -(-width // bits)
    instances = re.findall(r"DP16KD #\((.*?)\n\s*\)", text, re.S)
    assert len(instances) == blocks, "one block per data slice, none in depth"
    assert all('.REGMODE_B("OUTREG")' in body for body in instances)
    # a registered write is not observable through the ports (a read sees a write two cycles
    # on either way): check the register is there
    assert ("w_en_q" in text) == write_registered
    # the registered read address: a copy per BLOCKS_PER_COPY blocks, each driving its own
    copies = -(-blocks // BLOCKS_PER_COPY) if addr_registered else 0
    ens = sorted(set(re.findall(r"\.CEB\(([^)]*)\)", text)))
    assert len(ens) == max(1, copies), ens
    if copies:
        assert all("r_en_q" in e for e in ens), ens
    for t, (d, r, e) in enumerate(zip(got, want, expect, strict=True)):
        if t < skip:
            continue
        assert r == e, f"seed {seed}: plain RAM, cycle {t}: {r:#x}, model says {e:#x}"
        assert d == r, f"seed {seed}: DP16KD RAM, cycle {t}: {d:#x}, plain RAM {r:#x}"


def test_plain_when_not_registered_or_too_deep():
    ecp5 = BuildOptions(ecp5_bram=True)
    assert RegisteredRam(8, 2048, opts=ecp5).use_dp16kd()
    assert not RegisteredRam(8, 2048).use_dp16kd()
    assert not RegisteredRam(8, 2048, registered=False, opts=ecp5).use_dp16kd()
    assert not RegisteredRam(8, 16385, opts=ecp5).use_dp16kd()
    assert dp16kd_mode(1024) == (18, 1024, 4) and dp16kd_mode(1025) == (9, 2048, 3)
