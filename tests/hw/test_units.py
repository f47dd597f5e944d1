"""Amaranth-simulator unit tests: PE, systolic array, requantiser, config validation."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator
from sushi_hw.array import ProcessingElement, SystolicArray
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS, ConfigError, make_config, parse_overrides
from sushi_hw.reference import SHIFT_BITS, requantize
from sushi_hw.requant import Requantizer


def _sim(dut, bench, cycles=2000):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(cycles * 1e-8)


def test_pe_mac_and_banks():
    dut = ProcessingElement(psum_bits=20)
    seen = []

    async def bench(ctx):
        for bank, wv in ((0, -128), (1, 127)):
            ctx.set(dut.w_we, 1)
            ctx.set(dut.w_bank, bank)
            ctx.set(dut.w_data, wv)
            await ctx.tick()
        ctx.set(dut.w_we, 0)
        # a and its bank at t -> a_out and the selected weight at t+1 -> psum_out at t+3
        for a, bank, psum in ((-128, 0, 5), (127, 1, -7), (3, 0, 100)):
            ctx.set(dut.a_in, a)
            ctx.set(dut.bank, bank)
            await ctx.tick()
            ctx.set(dut.bank, 1 - bank)  # the next activation's bank must not matter
            ctx.set(dut.a_in, 0)
            await ctx.tick()
            ctx.set(dut.psum_in, psum)
            await ctx.tick()
            seen.append(ctx.get(dut.psum_out))

    _sim(dut, bench)
    assert seen == [-128 * -128 + 5, 127 * 127 - 7, 3 * -128 + 100]


def test_array_weight_stationary_tiles():
    """Two tiles back to back: weights of tile 2 load while tile 1 computes."""
    R, C = 4, 4
    dut = SystolicArray(R, C, 19)
    rng = np.random.default_rng(3)
    w = [rng.integers(-128, 128, (R, C)) for _ in range(2)]
    a = [rng.integers(-128, 128, (6, R)) for _ in range(2)]
    got = []

    async def feeder(ctx):
        for r in range(R):  # tile 0 -> bank 0
            ctx.set(dut.w_we, 1)
            ctx.set(dut.w_bank, 0)
            ctx.set(dut.w_row, r)
            ctx.set(dut.w_data, [int(x) for x in w[0][r]])
            await ctx.tick()
        ctx.set(dut.w_we, 0)
        for i in range(6):  # tile 0 rows; tile 1 loads into bank 1 meanwhile
            ctx.set(dut.a_valid, 1)
            ctx.set(dut.a_bank, 0)
            ctx.set(dut.a_data, [int(x) for x in a[0][i]])
            if i < R:
                ctx.set(dut.w_we, 1)
                ctx.set(dut.w_bank, 1)
                ctx.set(dut.w_row, i)
                ctx.set(dut.w_data, [int(x) for x in w[1][i]])
            else:
                ctx.set(dut.w_we, 0)
            await ctx.tick()
        for i in range(6):
            ctx.set(dut.a_bank, 1)
            ctx.set(dut.a_data, [int(x) for x in a[1][i]])
            await ctx.tick()
        ctx.set(dut.a_valid, 0)

    async def sink(ctx):
        while len(got) < 12:
            await ctx.tick()
            if ctx.get(dut.out_valid):
                got.append(list(ctx.get(dut.out_data)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feeder)
    sim.add_testbench(sink)
    sim.run_until(200e-8)
    exp = np.concatenate([a[0] @ w[0], a[1] @ w[1]])
    np.testing.assert_array_equal(np.array(got), exp)


def _edge_schedule(R: int, ms: list[int]) -> tuple[list[int], list[int]]:
    """Each tile's first weight-row and first activation cycle, each as early as the array's
    contract allows: activations the cycle after the tile's last row, the tile after next's
    rows from 2 cycles before this tile's first activation."""
    w, t = [], []
    for k in range(len(ms)):
        wk = 0 if k == 0 else w[-1] + R
        if k >= 2:
            wk = max(wk, t[-1] - 2)
        tk = wk + R
        if k:
            tk = max(tk, t[-1] + ms[k - 1])
        w.append(wk)
        t.append(tk)
    return w, t


@pytest.mark.parametrize("pipe", [True, False], ids=["pipe", "nopipe"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_array_contract_edges(seed, pipe):
    """Tiles of random M (1 .. 2R rows) with weights loaded at both edges of the contract:
    short tiles wait for their weights (written just before first use), long ones let the
    tile after next rewrite the bank just after its last use. Bit-exact against numpy."""
    R = C = 4
    rng = np.random.default_rng(100 + seed)
    ms = [int(x) for x in rng.integers(1, 2 * R + 1, 10)]
    ws = [rng.integers(-128, 128, (R, C)) for _ in ms]
    acts = [rng.integers(-128, 128, (mk, R)) for mk in ms]
    w_at, t_at = _edge_schedule(R, ms)
    wrows = {w_at[k] + r: (k, r) for k in range(len(ms)) for r in range(R)}
    arows = {t_at[k] + i: (k, i) for k in range(len(ms)) for i in range(ms[k])}
    assert len(wrows) == R * len(ms) and len(arows) == sum(ms)  # ports used once per cycle
    dut = SystolicArray(R, C, 19, BuildOptions(pipeline_regs=pipe))
    got = []

    async def feeder(ctx):
        for cyc in range(max(arows) + 1):
            k = wrows.get(cyc)
            ctx.set(dut.w_we, k is not None)
            if k is not None:
                ctx.set(dut.w_bank, k[0] % 2)
                ctx.set(dut.w_row, k[1])
                ctx.set(dut.w_data, [int(x) for x in ws[k[0]][k[1]]])
            k = arows.get(cyc)
            ctx.set(dut.a_valid, k is not None)
            if k is not None:
                ctx.set(dut.a_bank, k[0] % 2)
                ctx.set(dut.a_data, [int(x) for x in acts[k[0]][k[1]]])
            await ctx.tick()
        ctx.set(dut.w_we, 0)
        ctx.set(dut.a_valid, 0)

    async def sink(ctx):
        while len(got) < sum(ms):
            await ctx.tick()
            if ctx.get(dut.out_valid):
                got.append(list(ctx.get(dut.out_data)))

    # without pipeline registers: as the iCE40 flow builds it
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feeder)
    sim.add_testbench(sink)
    sim.run_until((max(arows) + dut.latency + 10) * 1e-8)
    exp = np.concatenate([a @ w for a, w in zip(acts, ws, strict=True)])
    np.testing.assert_array_equal(np.array(got), exp, err_msg=f"seed={seed} ms={ms}")


@pytest.mark.parametrize("seed", [0, 1])
def test_requantizer_matches_reference(seed):
    rng = np.random.default_rng(seed)
    lanes = 4
    dut = Requantizer(lanes)
    cases = []
    for _ in range(40):
        x = rng.integers(-(2**31), 2**31, lanes)
        x[rng.integers(0, lanes)] = rng.choice([-(2**31), 2**31 - 1, 0, -1, 1])
        cases.append(
            (
                x,
                int(rng.integers(1, 1 << 16)),
                int(rng.integers(0, 32)),
                bool(rng.integers(0, 2)),
                bool(rng.integers(0, 4)),
            )
        )
    outs = []

    async def bench(ctx):
        for x, mult, shift, relu, enable in cases:
            # the parameters lead the row by a cycle (the multiplier operand is registered)
            ctx.set(dut.params, {"enable": enable, "relu": relu, "mult": mult, "shift": shift})
            await ctx.tick()
            ctx.set(dut.i_valid, 1)
            ctx.set(dut.i_data, [int(v) for v in x])
            await ctx.tick()
            ctx.set(dut.i_valid, 0)
            for _ in range(Requantizer.latency - 1):
                await ctx.tick()
            assert ctx.get(dut.o_valid)
            outs.append(list(ctx.get(dut.o_data)))

    _sim(dut, bench)
    for (x, mult, shift, relu, enable), got in zip(cases, outs, strict=True):
        if enable:
            exp = requantize(np.array(x, dtype=np.int32), mult, shift, relu)
        else:
            exp = np.maximum(x, 0) if relu else x
        assert list(exp) == got, (x, mult, shift, relu, enable)


@pytest.mark.parametrize("hold_output", [False, True])
def test_requantizer_streams_rows_bit_exact(hold_output):
    """Back-to-back rows under each parameter set (as a GEMM feeds them: the parameters stay put
    while rows are in flight), every shift, multipliers with and without bit 15, extreme
    inputs; with ``hold_output`` rows arrive with gaps and the output must hold between them."""
    seed = 11 + hold_output
    rng = np.random.default_rng(seed)
    lanes = 2
    dut = Requantizer(lanes, hold_output=hold_output)
    edge = [-(2**31), 2**31 - 1, 0, -1, 1, 127, -128, 2**30, -(2**30)]
    groups = []
    for shift in range(32):
        for mult in (1, 0x7FFF, 0x8000, 0xFFFF, int(rng.integers(1, 1 << 16))):
            enable, relu = bool(rng.integers(0, 5)), bool(rng.integers(0, 2))
            rows = [
                [
                    int(rng.choice(edge))
                    if rng.random() < 0.3
                    else int(rng.integers(-(2**31), 2**31))
                    for _ in range(lanes)
                ]
                for _ in range(6)
            ]
            groups.append(((mult, shift, relu, enable), rows))
    got, want = [], []

    async def bench(ctx):
        for (mult, shift, relu, enable), rows in groups:
            ctx.set(dut.params, {"enable": enable, "relu": relu, "mult": mult, "shift": shift})
            await ctx.tick()  # the parameters lead the rows by a cycle
            pending = 0
            for x in rows:
                ctx.set(dut.i_valid, 1)
                ctx.set(dut.i_data, x)
                await ctx.tick()
                pending += 1
                if ctx.get(dut.o_valid):
                    got.append(list(ctx.get(dut.o_data)))
                    pending -= 1
                if hold_output and rng.random() < 0.5:
                    ctx.set(dut.i_valid, 0)
                    held = list(ctx.get(dut.o_data))
                    await ctx.tick()
                    if ctx.get(dut.o_valid):
                        got.append(list(ctx.get(dut.o_data)))
                        pending -= 1
                    else:
                        assert list(ctx.get(dut.o_data)) == held, f"seed={seed}: output moved"
            ctx.set(dut.i_valid, 0)
            while pending:
                await ctx.tick()
                if ctx.get(dut.o_valid):
                    got.append(list(ctx.get(dut.o_data)))
                    pending -= 1
            await ctx.tick()  # the last row leaves the output register
            assert not ctx.get(dut.busy)
            for x in rows:
                a = np.array(x, dtype=np.int32)
                if enable:
                    want.append([int(v) for v in requantize(a, mult, shift, relu)])
                else:
                    want.append([int(v) for v in (np.maximum(a, 0) if relu else a)])

    _sim(dut, bench, cycles=len(groups) * 40)
    assert len(got) == len(want) == 6 * len(groups), f"seed={seed}: simulation ended early"
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, f"seed={seed}: {len(bad)} of {len(want)} rows wrong, first {bad[:3]}"


def _requant_edge_inputs(rng, mult: int, shift: int, n: int) -> list[int]:
    """int32 inputs around where (x*mult + round) >> shift crosses the int8 limits, ties and
    zero, the int32 extremes, and random values."""
    x = [-(2**31), 2**31 - 1, 0, -1, 1]
    for y in (-129.5, -129, -128.5, -128, -127.5, -0.5, 0.5, 126.5, 127, 127.5, 128, 128.5):
        c = y * 2**shift / mult
        x += [int(np.floor(c)) + d for d in (-1, 0, 1, 2)]
    x = [v for v in x if -(2**31) <= v < 2**31]
    x += [int(v) for v in rng.integers(-(2**31), 2**31, n)]
    x += [int(v) >> int(rng.integers(0, 32)) for v in rng.integers(-(2**31), 2**31, n)]
    return x


@pytest.mark.parametrize("seed", [5, None])
def test_requantizer_random_all_shifts(seed):
    """Every shift, multipliers across the range (bit 15 set and clear, 1 and 0xFFFF), inputs
    at the rounding and saturation edges and the int32 extremes, ReLU and enable on and off,
    rows streamed back to back; ``seed=None`` draws a fresh seed (printed on failure)."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (1 << 32))
    rng = np.random.default_rng(seed)
    lanes = 4
    dut = Requantizer(lanes)
    groups = []
    for shift in range(1 << SHIFT_BITS):
        mults = [1, 0x7FFF, 0x8000, 0xFFFF]
        mults += [int(rng.integers(1, 0x8000)), int(rng.integers(0x8000, 0x10000))]
        for mult in mults:
            enable, relu = bool(rng.random() < 0.85), bool(rng.integers(0, 2))
            xs = _requant_edge_inputs(rng, mult, shift, 8)
            rng.shuffle(xs)
            xs += [0] * (-len(xs) % lanes)
            rows = [xs[k : k + lanes] for k in range(0, len(xs), lanes)]
            groups.append(((mult, shift, relu, enable), rows))
    got = []

    async def bench(ctx):
        for (mult, shift, relu, enable), rows in groups:
            ctx.set(dut.params, {"enable": enable, "relu": relu, "mult": mult, "shift": shift})
            ctx.set(dut.i_valid, 0)
            await ctx.tick()  # the parameters lead the rows by a cycle
            out = []
            for x in [*rows, *[None] * Requantizer.latency]:
                ctx.set(dut.i_valid, x is not None)
                if x is not None:
                    ctx.set(dut.i_data, x)
                await ctx.tick()
                if ctx.get(dut.o_valid):
                    out.append(list(ctx.get(dut.o_data)))
            assert not ctx.get(dut.busy)
            got.append(out)

    _sim(dut, bench, cycles=len(groups) * 40)
    assert len(got) == len(groups), f"seed={seed}: simulation ended early"
    for ((mult, shift, relu, enable), rows), out in zip(groups, got, strict=True):
        assert len(out) == len(rows), f"seed={seed} mult={mult:#x} shift={shift}: rows lost"
        a = np.array(rows, dtype=np.int64).astype(np.int32)
        if enable:
            want = requantize(a, mult, shift, relu)
        else:
            want = np.maximum(a, 0) if relu else a
        bad = [(r, o, w) for r, o, w in zip(rows, out, want.tolist(), strict=True) if o != w]
        assert not bad, (
            f"seed={seed} mult={mult:#x} shift={shift} relu={relu} enable={enable}: "
            f"{len(bad)} rows wrong, first (x, got, want) {bad[0]}"
        )


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="'rows'"):
        make_config("default", rows=0)
    with pytest.raises(ConfigError, match="'cols'"):
        make_config("default", cols=12)
    with pytest.raises(ConfigError, match="'max_dim'"):
        make_config("default", max_dim=1 << 30)
    with pytest.raises(ConfigError, match="'pb_bytes'"):
        make_config("default", pb_bytes=100)
    with pytest.raises(ConfigError, match="unknown preset"):
        make_config("nope")
    with pytest.raises(ConfigError, match="unknown config field"):
        make_config("default", colz=8)
    assert parse_overrides(["rows=16", "clock_mhz=250"]) == {"rows": 16, "clock_mhz": 250.0}
    assert {"tiny", "default", "large", "zcu104"} <= set(PRESETS)


def test_check_products_shared_multiplier_matches_parallel():
    """CheckProducts(shared=True) (one shift-add multiplier, FPGA builds) gives the same
    products as the parallel multipliers the simulations use: exact below 2**bits, at least
    2**bits above (the checks compare them with smaller limits)."""
    from sushi_hw.check import CheckProducts

    rng = np.random.default_rng(7)
    names = ("m", "kt_n", "nt_n", "pb_kt", "pb_nt", "w_stride", "pb_stride")
    cases = [dict.fromkeys(names, 0), dict.fromkeys(names, 0xFFFF)]
    for _ in range(40):
        small = rng.integers(0, 40, 4)
        cases.append(
            dict(
                m=int(rng.integers(0, 1 << 16)),
                kt_n=int(small[0]),
                nt_n=int(small[1]),
                pb_kt=int(small[2]),
                pb_nt=int(small[3]),
                w_stride=int(rng.integers(0, 1 << 16)),
                pb_stride=int(rng.integers(0, 300)),
            )
        )

    def want(c, requant):
        return {
            "a_words": c["m"] * c["kt_n"],
            "o_words": c["m"] * c["nt_n"] * (1 if requant else 4),
            "w_span": (c["nt_n"] - 1) * c["w_stride"] + c["kt_n"],
            "pb_span": (c["pb_nt"] - 1) * c["pb_stride"] + c["pb_kt"],
        }

    for bits, shared in ((17, False), (17, True), (12, False), (12, True)):
        dut = CheckProducts(bits, shared=shared)
        bad, cycles = [], []
        top = 1 << bits  # exact below, "at least top" above: compare min(v, top)

        async def bench(ctx, dut=dut, bad=bad, cycles=cycles, top=top, bits=bits):
            for i, c in enumerate(cases):
                requant = i % 2
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                for k, v in c.items():  # valid from the cycle after start, like kt_n/nt_n
                    ctx.set(getattr(dut, k), v)
                ctx.set(dut.requant, requant)
                n = 1
                await ctx.tick()
                while not ctx.get(dut.done):
                    await ctx.tick()
                    n += 1
                cycles.append(n)
                exp = {k: min(v, top) for k, v in want(c, requant).items()}
                got = {k: min(ctx.get(getattr(dut, k)), top) for k in exp}
                # nt_n - 1 / pb_nt - 1 wrap when 0: those spans are never used
                for k in ("w_span",) if c["nt_n"] == 0 else ():
                    got.pop(k), exp.pop(k)
                for k in ("pb_span",) if c["pb_nt"] == 0 else ():
                    got.pop(k), exp.pop(k)
                if got != exp:
                    bad.append((bits, dut.shared, c, requant, got, exp))

        top = Module()  # the parallel products are combinational: the bench brings the clock
        top.domains.sync = ClockDomain()
        top.submodules.dut = dut
        sim = Simulator(top)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
        assert not bad, bad[:2]
        assert max(cycles) <= (1 if not shared else 1 + 4 * 17), max(cycles)
