"""Convolutional programs (``sushi_sched.conv_compiler``) on the ISA golden model, bit-exact
against the numpy reference operators (``sushi_hw.reference``), with exact counters.

Every failure message names its seed."""

from __future__ import annotations

import numpy as np
import pytest
from sushi_hw import isa
from sushi_hw.config import PRESETS, ceil_div, make_config
from sushi_hw.reference import (
    conv2d_ref,
)
from sushi_sched.compiler import CompileError, LayerCall
from sushi_sched.conv_compiler import ConvLayer, Network, conv_program, pool_requant
from sushi_sched.conv_image import (
    ConvImage,
    cache_program,
    conv_pb_layout,
    fmap_bytes,
    fmap_from_bytes,
    fmap_words,
)
from sushi_sched.isa_sim import IsaSim
from sushi_tb.resnet_case import resnet_case

PROG, CACHE_PROG, IN, OUT, W = 0x0, 0x800, 0x2000, 0x10000, 0x40000


def crop(w: np.ndarray, c_out: int, c_in: int, k: int) -> np.ndarray:
    """A SubNet's slice of a SuperNet conv tensor: leading channels, centre k x k crop."""
    o = (w.shape[2] - k) // 2
    return w[:c_out, :c_in, o : o + k, o : o + k]


def load(sim: IsaSim, image: ConvImage, layout, what: str) -> None:  # noqa: ANN001
    for addr, blob in image.writes():
        sim.write(addr, blob)
    if layout is not None and layout.blocks:
        sim.write_program(CACHE_PROG, cache_program(sim.cfg, image, layout) + [isa.done()])
        res = sim.run(CACHE_PROG)
        assert res.ok, f"{what}: cache program stopped with {res.error_name}"
        assert res.counters["rd_weight_bytes"] == layout.tiles * sim.cfg.tile_bytes, what


def run(sim: IsaSim, prog: list[bytes], what: str):  # noqa: ANN201
    sim.write_program(PROG, prog)
    res = sim.run(PROG)
    assert res.ok, f"{what}: stopped with {res.error_name} at {res.pc:#x}"
    return res


# ---- random single convolutions -----------------------------------------------------------------
def random_conv(cfg, rng: np.random.Generator, seed: int) -> None:  # noqa: ANN001
    r, c = cfg.rows, cfg.cols
    k = int(rng.choice(isa.KERNELS))
    stride, pad = int(rng.choice(isa.STRIDES)), int(rng.integers(0, k // 2 + 1))
    h, w = (int(rng.integers(max(1, k - 2 * pad), 17)) for _ in range(2))
    c_in, c_out = int(rng.integers(1, 4 * r + 1)), int(rng.integers(1, 4 * c + 1))
    # the SuperNet tensor the layer slices: larger on some axes (c_out then whole tiles)
    k_max = int(rng.choice([kk for kk in isa.KERNELS if kk >= k]))
    c_in_max = c_in + int(rng.integers(0, r + 1)) * int(rng.integers(0, 2))
    if rng.integers(0, 2):
        c_out = ceil_div(c_out, c) * c
        c_out_max = c_out + c * int(rng.integers(0, 3))
    else:
        c_out_max = c_out
    sup = rng.integers(-128, 128, (c_out_max, c_in_max, k_max, k_max), dtype=np.int8)
    image = ConvImage.build(cfg, {"w": sup}, W)
    nt, ct, taps = ceil_div(c_out, c), ceil_div(c_in, r), k * k
    source = ["pb", "off", "split"][seed % 3]
    layout = None
    if source == "pb" and nt * ct * taps <= cfg.pb_tiles:
        layout = conv_pb_layout(cfg, image, {"w": (c_out, c_in, k)})
    elif source != "off":  # a random SubGraph block, perhaps larger than the layer on some axes
        for _ in range(20):
            sub = (
                int(rng.integers(1, c_out_max + 1)),
                int(rng.integers(1, c_in_max + 1)),
                int(rng.choice([kk for kk in isa.KERNELS if kk <= k_max])),
            )
            try:
                layout = conv_pb_layout(cfg, image, {"w": sub})
                break
            except CompileError:
                continue
    requant = None
    if rng.integers(0, 4):
        requant = (int(rng.integers(1, 1 << 12)), int(rng.integers(8, 24)))
    relu = bool(rng.integers(0, 2))
    x = rng.integers(-128, 128, (h, w, c_in), dtype=np.int8)
    what = (
        f"{cfg.name} seed {seed}: {h}x{w}x{c_in} -> {c_out}, k{k} s{stride} p{pad}, "
        f"tensor {sup.shape}, {source} {layout.blocks if layout else None}, {requant} relu={relu}"
    )
    sim = IsaSim(cfg)
    load(sim, image, layout, what)
    layer = ConvLayer("w", c_out, c_in, k, stride, pad, requant, relu)
    prog = conv_program(cfg, image, layout, layer, h, w, IN, OUT)
    sim.write(IN, fmap_bytes(cfg, x))
    res = run(sim, prog, what)
    h_out, w_out = isa.conv_out_size(h, k, stride, pad), isa.conv_out_size(w, k, stride, pad)
    n = fmap_words(cfg, h_out, w_out, c_out, requant is None) * r
    got = fmap_from_bytes(cfg, sim.read(OUT, n), h_out, w_out, c_out, requant is None)
    want = conv2d_ref(x, crop(sup, c_out, c_in, k), stride, pad, requant, relu)
    assert np.array_equal(got, want), what
    # counters: the input map once; every weight tile once per M-tile, PB or off-chip
    assert res.counters["rd_act_bytes"] == len(fmap_bytes(cfg, x)), what
    used = 0
    if layout is not None:
        _, bn, bc, bt = layout.blocks["w"]
        used = min(nt, bn) * min(ct, bc) * min(taps, bt)
    mt = ceil_div(h_out * w_out, cfg.acc_depth)
    assert res.counters["pb_read_bytes"] == mt * used * cfg.tile_bytes, what
    assert res.counters["rd_weight_bytes"] == mt * (nt * ct * taps - used) * cfg.tile_bytes, what
    assert res.counters["mac_active"] == h_out * w_out * ct * taps * nt, what


@pytest.mark.parametrize("preset,trials", [("default", 90), ("large", 30)])
def test_random_convolutions(preset, trials):
    cfg = PRESETS[preset]
    for seed in range(trials):
        random_conv(cfg, np.random.default_rng([seed, cfg.rows]), seed)


def test_several_m_tiles_read_weights_once_per_m_tile():
    cfg = make_config("default", acc_depth=16)  # 16 pixels per M-tile
    for seed in range(6):
        random_conv(cfg, np.random.default_rng([seed, 99]), seed)


# ---- residual blocks, pooling, the classifier ---------------------------------------------------
def small(rng, shape):  # noqa: ANN001, ANN201
    return rng.integers(-6, 7, shape, dtype=np.int8)


RQ = (3, 7)  # conv requantisation of the block tests
ADD = (3, 2, 2)  # mult_a, mult_b, shift


def ref_conv(x, w, layer: ConvLayer):  # noqa: ANN001, ANN201
    return conv2d_ref(x, crop(w, layer.c_out, layer.c_in, layer.k), layer.stride, layer.padding,
                      layer.requant, layer.relu)  # fmt: skip


@pytest.mark.parametrize("preset", ["default", "large"])
@pytest.mark.parametrize("cached", [False, True])
def test_resnet_blocks_pool_and_fc_chained(preset, cached):
    """basic (identity) -> basic (projection, stride 2) -> bottleneck (projection, stride 2)
    -> bottleneck (identity) -> global average pool -> FC, on chip from LOAD_ACT to STORE_ACT."""
    cfg = PRESETS[preset]
    r = cfg.rows
    case = resnet_case(cfg, 7, cached, W, IN, OUT)
    ops = [isa.decode(c)[0] for c in case.program]
    assert ops.count(isa.Op.LOAD_ACT) == 1 and ops.count(isa.Op.STORE_ACT) == 1
    assert ops.count(isa.Op.CONV) == case.convs and ops.count(isa.Op.ADD) == case.adds
    assert ops.count(isa.Op.POOL) == 1 and ops.count(isa.Op.GEMM) == 1

    sim = IsaSim(cfg)
    load(sim, case.image, case.layout, preset)
    sim.write(IN, fmap_bytes(cfg, case.x))
    res = run(sim, case.program, f"{preset} cached={cached}")
    got = fmap_from_bytes(cfg, sim.read(OUT, fmap_words(cfg, 1, 1, 10, True) * r), 1, 1, 10, True)
    assert np.array_equal(got.reshape(1, 10), case.want)
    h, w, c = case.x.shape
    assert res.counters["rd_act_bytes"] == h * w * c  # c = rows: no padding lanes
    if cached:
        assert res.counters["pb_read_bytes"] > 0


def test_pool_requant_is_the_rounded_mean():
    rng = np.random.default_rng(3)
    for pixels in (1, 2, 4, 9, 16, 49, 64, 100, 196):
        mult, shift = pool_requant(pixels)
        assert 1 << 15 <= mult < 1 << 16 or pixels == 1
        sums = rng.integers(-128 * pixels, 128 * pixels, 2000)
        got = (sums * mult + (1 << (shift - 1))) >> shift
        want = np.floor(sums / pixels + 0.5).astype(np.int64)
        if pixels & (pixels - 1) == 0:
            assert np.array_equal(got, want), pixels
        else:
            exact_half = (2 * sums) % (2 * pixels) == pixels
            assert np.array_equal(got[~exact_half], want[~exact_half]), pixels
            assert np.all(np.abs(got - want) <= 1), pixels


# ---- PB layout and CACHE ------------------------------------------------------------------------
def test_cache_runs_and_subnet_in_place():
    cfg = PRESETS["default"]
    r = cfg.rows
    sup = np.random.default_rng(0).integers(-128, 128, (3 * r, 2 * r, 5, 5), dtype=np.int8)
    image = ConvImage.build(cfg, {"w": sup}, W)
    t = image.tensors["w"]
    assert (t.nt, t.ct, t.taps, t.cstride, t.nstride) == (3, 2, 25, 25, 50)
    whole = conv_pb_layout(cfg, image, {"w": (2 * r, 2 * r, 1)})  # pb_t < taps: a run per (nt, ct)
    assert len(cache_program(cfg, image, whole)) == 4
    full_taps = conv_pb_layout(cfg, image, {"w": (r, r, 5)})  # one run of 25 tiles
    assert len(cache_program(cfg, image, full_taps)) == 1
    full_ct = conv_pb_layout(cfg, image, {"w": (2 * r, 2 * r, 5)})  # contiguous: one CACHE
    assert cache_program(cfg, image, full_ct) == [isa.cache(W, 0, 100)]
    # one SubNet slice, three PB states: the same CONV fields but the PB ones
    layer = ConvLayer("w", 2 * r, r, 3, 1, 1)
    progs = [conv_program(cfg, image, lay, layer, 5, 5, IN, OUT) for lay in (None, whole, full_ct)]
    fields = [isa.decode(p[1])[1] for p in progs]
    for f in fields:
        assert (f["w_addr"], f["w_cstride"], f["w_nstride"]) == (W, 25, 50)
    assert (fields[0]["pb_nt"], fields[0]["pb_ct"], fields[0]["pb_t"]) == (0, 0, 0)
    assert (fields[1]["pb_nt"], fields[1]["pb_ct"], fields[1]["pb_t"]) == (2, 1, 1)
    assert (fields[1]["pb_cstride"], fields[1]["pb_nstride"]) == (1, 2)
    assert (fields[2]["pb_nt"], fields[2]["pb_ct"], fields[2]["pb_t"]) == (2, 1, 9)
    assert (fields[2]["pb_cstride"], fields[2]["pb_nstride"]) == (25, 50)


# ---- what the compiler rejects ------------------------------------------------------------------
def test_compiler_rejects_what_the_isa_cannot_express():
    cfg = PRESETS["default"]
    r = cfg.rows
    rng = np.random.default_rng(0)
    tensors = {"a": small(rng, (2 * r, r, 3, 3)), "b": small(rng, (r, 2 * r, 3, 3))}
    image = ConvImage.build(cfg, {**tensors, "fc": small(rng, (r, 4))}, W)
    big_image = ConvImage.build(cfg, {"w": small(rng, (4 * r, 4 * r, 7, 7))}, W)
    net = Network(cfg, image)
    x = net.input(8, 8, r)
    y = net.conv(x, ConvLayer("a", 2 * r, r, 3))
    cases = [
        (lambda: net.add(x, y, 1, 1, 0), "residual add of mismatched shapes"),
        (
            lambda: net.basic_block(
                x, ConvLayer("a", 2 * r, r, 3), ConvLayer("b", r, 2 * r, 3, 2), (1, 1, 0)
            ),
            "residual of mismatched shape",
        ),  # fmt: skip
        (lambda: net.conv(x, ConvLayer("a", r + 1, r, 3)), "neither a multiple"),
        (lambda: net.conv(x, ConvLayer("a", r, r, 5)), f"uses {r}x{r}x5x5"),
        (lambda: net.conv(x, ConvLayer("a", r, 2, 3)), "expects 2 input channels"),
        (lambda: net.conv(x, ConvLayer("a", r, r, 3, 3)), "stride 3"),
        (lambda: net.conv(x, ConvLayer("a", r, r, 3, 1, 2)), "pad 2"),
        (lambda: net.conv(x, ConvLayer("nope", r, r, 3)), "unknown tensor"),
        (lambda: net.fc(y, LayerCall("fc", r, 4, None)), "needs a pooled 1x1 map"),
        (lambda: net.fc(net.pool(x), LayerCall("a", r, 4, None)), "conv tensor"),
        (
            lambda: net.conv(
                net.conv(x, ConvLayer("a", r, r, 3, requant=None)), ConvLayer("a", r, r, 3)
            ),
            "cannot read an int32",
        ),  # fmt: skip
        (lambda: Network(PRESETS["tiny"], image), "no convolution hardware"),
        (lambda: ConvImage.build(cfg, {"x": np.zeros((1, 1, 2, 2), np.int8)}, W), "kernel 2x2"),
        (lambda: conv_pb_layout(cfg, big_image, {"w": (4 * r, 4 * r, 7)}), "does not fit the PB"),
    ]
    for fn, msg in cases:
        with pytest.raises(CompileError, match=msg):
            fn()
    big = Network(cfg, image)
    v = big.input(40, 40, r)  # 1600 words in, 1600 out, plus a conv's 1600: no room
    v = big.conv(big.conv(v, ConvLayer("a", 2 * r, r, 1)), ConvLayer("b", r, 2 * r, 1))
    with pytest.raises(CompileError, match="activation words"):
        big.program(v, IN, OUT)


def test_int32_output_split_by_channel_tiles():
    """An int32 output larger than a buffer: several CONVs, each part stored in place."""
    cfg = PRESETS["default"]
    r = cfg.rows
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, (4 * r, 2 * r, 3, 3), dtype=np.int8)
    x = rng.integers(-128, 128, (16, 16, 2 * r), dtype=np.int8)
    image = ConvImage.build(cfg, {"w": w}, W)
    layout = conv_pb_layout(cfg, image, {"w": (3 * r, r, 3)})
    prog = conv_program(cfg, image, layout, ConvLayer("w", 4 * r, 2 * r, 3, 1, 1, None), 16, 16,
                        IN, OUT)  # fmt: skip
    assert [isa.decode(c)[0] for c in prog].count(isa.Op.CONV) == 2
    sim = IsaSim(cfg)
    load(sim, image, layout, "split")
    sim.write(IN, fmap_bytes(cfg, x))
    run(sim, prog, "split")
    got = fmap_from_bytes(cfg, sim.read(OUT, 4 * 4 * 256 * r), 16, 16, 4 * r, True)
    assert np.array_equal(got, conv2d_ref(x, w, 1, 1))


# ---- sushi conv ---------------------------------------------------------------------------------
@pytest.fixture()
def conv_files(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x": rng.integers(-128, 128, (9, 7, 5), dtype=np.int8),
        "w": rng.integers(-128, 128, (11, 5, 3, 3), dtype=np.int8),
        "w_cin4": np.zeros((11, 4, 3, 3), dtype=np.int8),
        "w_k2": np.zeros((11, 5, 2, 2), dtype=np.int8),
        "w_f32": np.zeros((11, 5, 3, 3), dtype=np.float32),
        "x_2d": np.zeros((9, 7), dtype=np.int8),
    }
    out = {}
    for name, arr in arrays.items():
        out[name] = tmp_path / f"{name}.npy"
        np.save(out[name], arr)
    out["out"] = tmp_path / "o.npy"
    return out, arrays


@pytest.mark.parametrize(
    "extra", [["--stride", "2", "--pad", "1"], ["--requant", "5,11", "--relu", "--pad", "1"]]
)
def test_sushi_conv_golden(conv_files, capsys, extra):
    from sushi_sched.cli import main

    f, a = conv_files
    argv = ["conv", "--x", str(f["x"]), "--w", str(f["w"]), "--out", str(f["out"])]
    assert main([*argv, "--backend", "golden", *extra]) == 0
    got = np.load(f["out"])
    stride = 2 if "--stride" in extra else 1
    requant = (5, 11) if "--requant" in extra else None
    assert np.array_equal(got, conv2d_ref(a["x"], a["w"], stride, 1, requant, "--relu" in extra))
    assert got.dtype == (np.int8 if requant else np.int32)
    assert "matches the reference" in capsys.readouterr().out


@pytest.mark.parametrize(
    "w,extra,message",
    [
        ("w", ["--bias", "x"], "--bias is not supported"),
        ("w_cin4", [], "X's C_in (5) must equal W's C_in (4)"),
        ("w_k2", [], "CONV supports 1x1, 3x3"),
        ("w_f32", [], "W (--w) must be int8, got float32"),
        ("x_2d", [], "W (--w) must be 4-D"),
        ("missing", [], "does not exist"),
        ("w", ["--stride", "3"], "stride 1 or 2"),
        ("w", ["--pad", "2"], "takes 0 .. 1"),
        ("w", ["--requant", "0,3"], "requant multiplier 0 out of range"),
        ("w", ["--backend", "fpga"], "unknown backend 'fpga'"),
        ("w", ["--preset", "tiny"], "no convolution hardware"),
        ("w", ["--set", "acc_depth=16", "--set", "act_bytes=128"], "activation words"),
    ],
)
def test_sushi_conv_errors(conv_files, tmp_path, capsys, w, extra, message):
    from sushi_sched.cli import main

    f, _ = conv_files
    wpath = f.get(w, tmp_path / "missing.npy")
    extra = [str(f[e]) if e in f else e for e in extra]
    if "--backend" not in extra:
        extra += ["--backend", "golden"]
    rc = main(["conv", "--x", str(f["x"]), "--w", str(wpath), "--out", str(f["out"]), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not f["out"].exists()
