"""Benchmarks on the RTL simulation (``sushi bench``): the GEMM engine's utilisation on fixed
shapes, and one GEMM per weight source on the whole accelerator, through the library's RTL
backend. Results land as JSON under ``build/bench/``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_hw.program import act_bytes, in_words

from ..compiler import PBLayout, WeightImage, cache_program
from ..conv_compiler import ConvLayer, Network
from ..conv_image import ConvImage, conv_pb_layout, fmap_bytes, fmap_from_bytes, fmap_words
from ..conv_image import cache_program as conv_cache_program
from ..supernet.base import Layer
from .backend import Backend, require_ok
from .gemm_rtl import TOP as GEMM_TOP
from .gemm_rtl import GemmBench
from .rtl import run_on_rtl

# the memory benchmark's addresses (as the accelerator testbench has always used them)
PROG_ADDR, CACHE_PROG_ADDR, IN_ADDR, W_ADDR = 0x0, 0x800, 0x1000, 0x8000
OUT_ADDR = 0x40000  # the conv bench's output (its weights reach 0x30000)


def gemm_shapes(cfg: AccelConfig) -> list[tuple[int, int, int]]:
    """Large squares (16*rows), batch-1 GEMVs and a few odd shapes, all within the config."""
    big = 16 * cfg.rows
    shapes = [
        (big, big, big),
        (1, big, big),
        (1, 4 * cfg.rows, 4 * cfg.cols),
        (37, 53, 29),
        (3 * cfg.rows + 1, 5, 2 * cfg.cols + 3),
        (cfg.acc_depth + 7, 24, 40),
    ]
    words = lambda m, k: m * ceil_div(k, cfg.rows)  # noqa: E731
    return [s for s in shapes if words(s[0], s[1]) <= cfg.act_words and max(s) <= cfg.max_dim]


@dataclass
class MemoryBench:
    """One GEMM per weight source (PB, off-chip, split), measured by the cycle counter."""

    def __call__(self, backend: Backend, progress=None) -> list[dict]:  # noqa: ANN001
        cfg = backend.cfg
        rng = np.random.default_rng(0)
        records = []
        big = 16 * cfg.rows
        for m, k, n in ((big, big, big), (1, big, big)):
            w = rng.integers(-128, 128, (k, n), dtype=np.int8)
            x = rng.integers(-128, 128, (m, k), dtype=np.int8)
            kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
            image = WeightImage.build(cfg, {"w": w}, W_ADDR)
            backend.write(W_ADDR, image.blobs["w"])
            backend.write(IN_ADDR, act_bytes(cfg, x))
            load = [isa.load_act(IN_ADDR, 0, 0, in_words(cfg, m, k)), isa.done()]
            backend.write(PROG_ADDR, b"".join(load))
            require_ok(backend.run(PROG_ADDR, "load"))
            for source in ("pb", "offchip", "split"):
                kc, nc = {"pb": (kt, nt), "offchip": (0, 0), "split": (kt // 2, nt // 2)}[source]
                if kc * nc > cfg.pb_tiles:  # the PB holds what it can: the leading tile rows
                    nc = cfg.pb_tiles // kc
                layout = PBLayout.allocate(cfg, {"w": (kc, nc)})
                pb_tile, pb_stride, pb_kt, pb_nt = (0, 0, 0, 0)
                if layout.blocks:
                    prog = [*cache_program(cfg, image, layout), isa.done()]
                    backend.write(CACHE_PROG_ADDR, b"".join(prog))
                    require_ok(backend.run(CACHE_PROG_ADDR, "cache"))
                    pb_tile, kc2, nc2 = layout.blocks["w"]
                    pb_stride, pb_kt, pb_nt = kc2, kc2, nc2
                cmd = isa.gemm(
                    m=m,
                    k=k,
                    n=n,
                    a_buf=0,
                    a_word=0,
                    o_buf=1,
                    o_word=0,
                    w_addr=W_ADDR,
                    w_stride=kt,
                    pb_tile=pb_tile,
                    pb_stride=pb_stride,
                    pb_kt=pb_kt,
                    pb_nt=pb_nt,
                    requant=(1 << 8, 16),
                )
                backend.write(PROG_ADDR, cmd + isa.done())
                c = require_ok(backend.run(PROG_ADDR, f"bench {source}")).counters
                expected = (kt * nt - pb_kt * pb_nt) * cfg.tile_bytes * ceil_div(m, cfg.acc_depth)
                compute = ceil_div(m * k * n, cfg.rows * cfg.cols)
                roof = max(compute, ceil_div(expected, cfg.mem_bytes_per_cycle))
                records.append(
                    {
                        "preset": cfg.name,
                        "M": m,
                        "K": k,
                        "N": n,
                        "weight_source": source,
                        "cycles": c["cycles"],
                        "roofline_cycles": roof,
                        "efficiency": round(roof / c["cycles"], 4),
                        "offchip_weight_bytes": c["rd_weight_bytes"],
                        "expected_offchip_weight_bytes": expected,
                        "pb_bytes": c["pb_read_bytes"],
                        "pb_tiles_cached": pb_kt * pb_nt,
                        "pb_bytes_config": cfg.pb_bytes,
                    }
                )
        return records


def bench_gemm(
    cfg: AccelConfig, sim: str, out_dir: Path, shapes: list[tuple[int, int, int]] | None = None
) -> list[dict]:
    work = Path(out_dir) / f"gemm.{cfg.name}.{sim}"
    job = GemmBench([tuple(s) for s in (shapes or gemm_shapes(cfg))])
    return run_on_rtl(cfg, job, sim=sim, workdir=work, top=GEMM_TOP)


def bench_memory(cfg: AccelConfig, sim: str, out_dir: Path) -> list[dict]:
    """The largest layer (16*rows square) must fit the PB for the all-PB case; a preset whose
    PB is smaller is measured with ``pb_bytes`` raised to fit, and every record names it."""
    need = (16 * cfg.rows) ** 2
    if cfg.pb_bytes < need:
        cfg = cfg.replace(name=f"{cfg.name}+pb{need // 1024}k", pb_bytes=need)
    work = Path(out_dir) / f"memory.{cfg.name}.{sim}"
    return run_on_rtl(cfg, MemoryBench(), sim=sim, workdir=work)


# ---- convolutions ---------------------------------------------------------------------------
def conv_layers(cfg: AccelConfig) -> list[tuple[int, int, int, int, int, int]]:
    """(H, W, C_in, C_out, k, stride) of the conv bench: 3x3 layers with C_in, C_out >= 4*rows
    (ResNet's bulk), a 1x1, a 7x7 stem-like layer, a stride-2 layer, the 3-channel input layer
    and small late-stage maps where the weight load bounds a tile."""
    r = cfg.rows
    return [
        (8, 8, 4 * r, 4 * r, 3, 1),
        (16, 16, 4 * r, 4 * r, 3, 1),
        (8, 8, 8 * r, 8 * r, 3, 1),
        (16, 16, 2 * r, 4 * r, 3, 2),
        (8, 8, 4 * r, 8 * r, 1, 1),
        (16, 16, r, r, 7, 1),
        (16, 16, 3, r, 3, 1),
        (4, 4, 8 * r, 8 * r, 3, 1),
        (2, 2, 8 * r, 8 * r, 3, 1),
    ]


@dataclass
class ConvBench:
    """One CONV per layer and weight source, timed alone (its input loaded by a program
    before), checked bit-exactly against the numpy reference, with the cost model's cycles."""

    layers: list[tuple[int, int, int, int, int, int]]

    def __call__(self, backend: Backend, progress=None) -> list[dict]:  # noqa: ANN001
        from sushi_hw.reference import conv2d_ref

        from ..timing import TimingModel

        cfg = backend.cfg
        tm = TimingModel(cfg)
        rng = np.random.default_rng(0)
        records = []
        for h, w, c_in, c_out, k, stride in self.layers:
            wt = rng.integers(-128, 128, (c_out, c_in, k, k), dtype=np.int8)
            x = rng.integers(-128, 128, (h, w, c_in), dtype=np.int8)
            image = ConvImage.build(cfg, {"w": wt}, W_ADDR)
            for addr, blob in image.writes():
                backend.write(addr, blob)
            backend.write(IN_ADDR, fmap_bytes(cfg, x))
            layer = ConvLayer("w", c_out, c_in, k, stride, None, (1 << 8, 16), True)
            ct, nt, taps = ceil_div(c_in, cfg.rows), ceil_div(c_out, cfg.cols), k * k
            half_out = max(1, nt // 2) * cfg.cols
            for source in ("pb", "offchip", "split"):
                dims = {"pb": (c_out, c_in, k), "split": (min(c_out, half_out), c_in, k)}
                layout = None
                if source in dims:
                    layout = conv_pb_layout(cfg, image, {"w": dims[source]})
                    prog = [*conv_cache_program(cfg, image, layout), isa.done()]
                    backend.write(CACHE_PROG_ADDR, b"".join(prog))
                    require_ok(backend.run(CACHE_PROG_ADDR, "cache"))
                net = Network(cfg, image, layout)
                y = net.conv(net.input(h, w, c_in), layer)
                load, conv, store, done = net.program(y, IN_ADDR, OUT_ADDR)
                backend.write(PROG_ADDR, load + done)
                loaded = require_ok(backend.run(PROG_ADDR, "load")).counters["rd_act_bytes"]
                backend.write(PROG_ADDR, conv + done)
                c = require_ok(backend.run(PROG_ADDR, f"conv {source}")).counters
                backend.write(PROG_ADDR, store + done)
                require_ok(backend.run(PROG_ADDR, "store"))
                out_words = fmap_words(cfg, y.h, y.w, c_out)
                raw = backend.read(OUT_ADDR, out_words * cfg.rows)
                got = fmap_from_bytes(cfg, raw, y.h, y.w, c_out)
                want = conv2d_ref(x, wt, stride, k // 2, layer.requant, layer.relu)
                if not np.array_equal(got, want):
                    raise AssertionError(f"conv {h}x{w}x{c_in}->{c_out} k{k}: wrong output")
                _, f = isa.decode(conv)
                pb = (f["pb_nt"], f["pb_ct"], f["pb_t"])
                pixels = y.h * y.w
                model = tm.query_overhead + 2 * tm.cmd_cycles
                model += tm.conv_cycles(pixels, ct, taps, nt, pb)
                ideal = ceil_div(pixels * c_in * taps * c_out, cfg.rows * cfg.cols)
                records.append(
                    {
                        "preset": cfg.name,
                        "rows": cfg.rows,
                        "cols": cfg.cols,
                        "H": h,
                        "W": w,
                        "C_in": c_in,
                        "C_out": c_out,
                        "k": k,
                        "stride": stride,
                        "pad": k // 2,
                        "weight_source": source,
                        "cycles": c["cycles"],
                        "ideal_cycles": ideal,
                        "utilization": round(ideal / c["cycles"], 4),
                        "offchip_act_bytes": loaded,
                        "input_fmap_bytes": ct * h * w * cfg.rows,
                        "im2col_bytes": pixels * ct * taps * cfg.rows,
                        "offchip_weight_bytes": c["rd_weight_bytes"],
                        "pb_bytes": c["pb_read_bytes"],
                        "model_cycles": model,
                        "model_error": round((model - c["cycles"]) / c["cycles"], 4),
                    }
                )
                if progress is not None:
                    progress.update()
        return records


def bench_conv(cfg: AccelConfig, sim: str, out_dir: Path) -> list[dict]:
    """Every layer's weights must fit the PB for the all-PB case: ``pb_bytes`` is raised to
    the largest layer's (named in the records' preset) when the preset's is smaller."""
    layers = conv_layers(cfg)
    need = max(
        ceil_div(co, cfg.cols) * ceil_div(ci, cfg.rows) * k * k for _, _, ci, co, k, _ in layers
    )
    need *= cfg.tile_bytes
    if cfg.pb_bytes < need:
        cfg = cfg.replace(name=f"{cfg.name}+pb{need // 1024}k", pb_bytes=need)
    work = Path(out_dir) / f"conv.{cfg.name}.{sim}"
    return run_on_rtl(cfg, ConvBench(layers), sim=sim, workdir=work)


# ---- calibration at real layer shapes ---------------------------------------------------------

#: 1x1 OFA-ResNet50 layers (largest SubNet, resolution 224) run as GEMMs: the stem-adjacent
#: block, each stage's first and last block, and the classifier; the last two stage-3 layers
#: also with their weights in the PB (whole, then the leading half of the N-tiles).
CALIBRATION_LAYERS = (
    "s0b0.conv1",
    "s0b0.down",
    "s0b3.conv3",
    "s1b0.conv1",
    "s1b3.conv3",
    "s2b0.conv1",
    "s2b5.conv3",
    "s3b0.conv1",
    "s3b0.down",
    "s3b3.conv1",
    "s3b3.conv3",
    "fc",
)
CALIBRATION_PB = {"s3b0.down": 1.0, "s3b3.conv3": 0.5}

#: 3x3 OFA-ResNet50 layers (largest SubNet, resolution 224) run as CONV commands: the stem's
#: second 3x3 (``stem0``, 224x224x3, does not fit one activation buffer of ``zcu104``: its
#: input is 50,176 words of 32 bytes, the buffer holds 32,768), and each stage's 3x3 conv of
#: the first block (stride 2 from stage 1 on) and of the last. ``s0b3.conv2`` is left out: the
#: same command as ``s0b0.conv2`` (56x56x88 -> 88, stride 1), and no cycle depends on the data.
CONV_CALIBRATION_LAYERS = (
    "stem1",
    "s0b0.conv2",
    "s1b0.conv2",
    "s1b3.conv2",
    "s2b0.conv2",
    "s2b5.conv2",
    "s3b0.conv2",
    "s3b3.conv2",
)
#: also with the leading N-tiles in the PB, as many as it holds: PB and off-chip tiles mixed
CONV_CALIBRATION_PB = ("s3b3.conv2",)

# the conv calibration's addresses: programs as above, the input map, the output map, weights
CONV_IN_ADDR, CONV_OUT_ADDR, CONV_W_ADDR = 0x1000, 0x10_0000, 0x20_0000


@dataclass(frozen=True)
class ConvShape:
    """One CONV of the calibration: the SubNet's layer (for the cost model) and its geometry."""

    layer: Layer
    h: int
    w: int
    stride: int

    @property
    def c_out(self) -> int:
        return self.layer.dims[0]

    @property
    def c_in(self) -> int:
        return self.layer.dims[1]

    @property
    def k(self) -> int:
        return self.layer.dims[2]

    @classmethod
    def of(cls, layer: Layer) -> ConvShape:
        """The input size and stride of a square ``oihw`` layer, from its byte counts."""
        c_in = layer.dims[1]
        h = math.isqrt(layer.in_bytes // c_in)
        h_out = math.isqrt(layer.m)
        stride = 2 if h_out < h and layer.dims[2] > 1 else 1
        if (
            h * h * c_in != layer.in_bytes
            or isa.conv_out_size(h, layer.dims[2], stride, layer.dims[2] // 2) != h_out
        ):
            raise ValueError(f"layer {layer.name}: not a square convolution of stride 1 or 2")
        return cls(layer, h, h, stride)


def _resnet50_max_layers() -> dict[str, Layer]:
    from ..supernet.registry import get_supernet

    r50 = get_supernet("ofa-resnet50")
    return {ly.name: ly for ly in r50.subnet(r50.max_config()).layers}


def calibration_layers() -> list[tuple[str, int, int, int]]:
    """(name, M, K, N) of :data:`CALIBRATION_LAYERS` in the largest OFA-ResNet50 SubNet."""
    by_name = _resnet50_max_layers()
    return [(n, by_name[n].m, by_name[n].k, by_name[n].n) for n in CALIBRATION_LAYERS]


def conv_calibration_layers() -> list[ConvShape]:
    """:data:`CONV_CALIBRATION_LAYERS` in the largest OFA-ResNet50 SubNet."""
    by_name = _resnet50_max_layers()
    return [ConvShape.of(by_name[n]) for n in CONV_CALIBRATION_LAYERS]


def calibration_config(
    cfg: AccelConfig,
    layers: list[tuple[str, int, int, int]],
    convs: Sequence[ConvShape] = (),
) -> AccelConfig:
    """``cfg`` with ``mem_bytes`` shrunk to what the layers need, so that the HDL memory model
    is small: the GEMMs' largest weight grid plus the program; a CONV's weights above its input
    and output maps."""
    tb = cfg.tile_bytes
    need = W_ADDR + max(ceil_div(k, cfg.rows) * ceil_div(n, cfg.cols) * tb for _, _, k, n in layers)
    for c in convs:
        tiles = ceil_div(c.c_out, cfg.cols) * ceil_div(c.c_in, cfg.rows) * c.k * c.k
        need = max(need, CONV_W_ADDR + tiles * tb)
    return cfg.replace(mem_bytes=1 << (need - 1).bit_length())


def _conv_requant(k: int) -> tuple[int, int]:
    """A requantisation that keeps random int8 data in range: a sum of ``k`` products of
    uniform int8 values spreads by about 5461 * sqrt(k); scaled to about 40."""
    return 1 << 8, min(31, round(15 + 0.5 * math.log2(k)))


@dataclass
class CalibrationBench:
    """One GEMM per 1x1 layer shape and one CONV per 3x3 layer, the cycle counter against the
    cost model.

    Timing does not depend on the data (no zero skipping anywhere). The GEMMs leave memory and
    buffers as they are (zeros): no time goes into writing megabytes through the backdoor.
    The CONVs run on random data and their outputs are checked bit-exactly against numpy
    (``conv2d_ref``)."""

    layers: list[tuple[str, int, int, int]]
    pb: dict[str, float]
    convs: list[ConvShape] = field(default_factory=list)
    conv_pb: tuple[str, ...] = ()

    def __call__(self, backend: Backend, progress=None) -> list[dict]:  # noqa: ANN001
        from ..cost import CostModel
        from ..timing import TimingModel

        cfg = backend.cfg
        tm = TimingModel(cfg)
        records: list[dict] = []

        def record(name: str, m: int, k: int, n: int, kind: str, rtl: int, model: int) -> None:
            records.append(
                {
                    "layer": name,
                    "M": m,
                    "K": k,
                    "N": n,
                    "kind": kind,
                    "rtl_cycles": int(rtl),
                    "model_cycles": int(model),
                    "error": round((model - rtl) / rtl, 4) if rtl else None,  # golden: no clock
                }
            )

        for name, m, k, n in self.layers:
            kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
            runs = [("1x1 gemm, weights off-chip", 0, 0)]
            if name in self.pb:
                pb_nt = max(1, min(nt, int(nt * self.pb[name]), cfg.pb_tiles // kt))
                what = "all" if pb_nt == nt else f"{pb_nt}/{nt} N-tiles"
                runs.append((f"1x1 gemm, weights in the PB ({what})", kt, pb_nt))
            for kind, pb_kt, pb_nt in runs:
                if pb_kt:
                    layout = PBLayout.allocate(cfg, {"w": (pb_kt, pb_nt)})
                    image = WeightImage(cfg, W_ADDR, {"w": W_ADDR}, {"w": kt}, {"w": (k, n)})
                    prog = [*cache_program(cfg, image, layout), isa.done()]
                    backend.write(CACHE_PROG_ADDR, b"".join(prog))
                    c = require_ok(backend.run(CACHE_PROG_ADDR, f"cache {name}")).counters
                    cyc, _ = _model_load(tm, pb_kt * pb_nt * cfg.tile_bytes, pb_nt)
                    record(name, m, k, n, f"CACHE ({pb_nt} commands)", c["cycles"], cyc)
                cmd = isa.gemm(
                    m=m,
                    k=k,
                    n=n,
                    a_buf=0,
                    a_word=0,
                    o_buf=1,
                    o_word=0,
                    w_addr=W_ADDR,
                    w_stride=kt,
                    pb_tile=0,
                    pb_stride=pb_kt,
                    pb_kt=pb_kt,
                    pb_nt=pb_nt,
                    requant=(1 << 8, 16),
                )
                backend.write(PROG_ADDR, cmd + isa.done())
                c = require_ok(backend.run(PROG_ADDR, f"calibrate {name}")).counters
                model = (
                    tm.query_overhead + 2 * tm.cmd_cycles + tm.gemm_cycles(m, kt, nt, pb_kt, pb_nt)
                )
                record(name, m, k, n, kind, c["cycles"], model)
                if progress is not None:
                    progress.update(1)

        cm = CostModel(cfg, tm)
        rng = np.random.default_rng(0)
        written: tuple[int, ...] | None = None  # the weight shape in memory (shared by layers)
        for shape in self.convs:
            ly = shape.layer
            dims = tuple(ly.dims)
            if dims != written:
                wt = rng.integers(-128, 128, dims, dtype=np.int8)
                image = ConvImage.build(cfg, {"w": wt}, CONV_W_ADDR)
                for addr, blob in image.writes():
                    backend.write(addr, blob)
                written = dims
            x = rng.integers(-128, 128, (shape.h, shape.w, shape.c_in), dtype=np.int8)
            backend.write(CONV_IN_ADDR, fmap_bytes(cfg, x))
            conv = f"conv{shape.k}x{shape.k}" + (
                f" stride {shape.stride}" if shape.stride > 1 else ""
            )
            runs = [(f"{conv}, weights off-chip", None)]
            if ly.name in self.conv_pb:
                ct, nt, taps = (
                    ceil_div(shape.c_in, cfg.rows),
                    ceil_div(shape.c_out, cfg.cols),
                    shape.k**2,
                )
                pb_nt = min(nt, cfg.pb_tiles // (ct * taps))
                what = "all" if pb_nt == nt else f"{pb_nt}/{nt} N-tiles"
                cached = (min(shape.c_out, pb_nt * cfg.cols), shape.c_in, shape.k, shape.k)
                runs.append((f"{conv}, weights in the PB ({what})", cached))
            for kind, cached in runs:
                layout = None
                if cached is not None:
                    layout = conv_pb_layout(cfg, image, {"w": (cached[0], cached[1], shape.k)})
                    prog = [*conv_cache_program(cfg, image, layout), isa.done()]
                    backend.write(CACHE_PROG_ADDR, b"".join(prog))
                    c = require_ok(backend.run(CACHE_PROG_ADDR, f"cache {ly.name}")).counters
                    cyc, _ = _model_load(tm, layout.tiles * cfg.tile_bytes, len(prog) - 1)
                    record(ly.name, ly.m, ly.k, ly.n, f"CACHE ({len(prog) - 1} commands)",
                           c["cycles"], cyc)  # fmt: skip
                rec_rtl = self._conv(backend, shape, image, layout, x, wt)
                model = tm.query_overhead + tm.cmd_cycles + cm.layer(ly, cached).cycles
                record(ly.name, ly.m, ly.k, ly.n, kind, rec_rtl, model)
                if progress is not None:
                    progress.update(1)
        return records

    @staticmethod
    def _conv(backend: Backend, shape: ConvShape, image, layout, x, wt) -> int:  # noqa: ANN001
        """Load ``x``, run the CONV alone (its cycles: doorbell to done, CONV and DONE), store
        its output and check it against numpy bit-exactly."""
        from sushi_hw.reference import conv2d_ref

        cfg = backend.cfg
        pad = shape.k // 2
        requant = _conv_requant(shape.c_in * shape.k * shape.k)
        layer = ConvLayer("w", shape.c_out, shape.c_in, shape.k, shape.stride, pad, requant)
        net = Network(cfg, image, layout)
        y = net.conv(net.input(shape.h, shape.w, shape.c_in), layer)
        load, conv, store, done = net.program(y, CONV_IN_ADDR, CONV_OUT_ADDR)
        name = shape.layer.name
        backend.write(PROG_ADDR, load + done)
        require_ok(backend.run(PROG_ADDR, f"load {name}"))
        backend.write(PROG_ADDR, conv + done)
        cycles = require_ok(backend.run(PROG_ADDR, f"calibrate {name}")).counters["cycles"]
        backend.write(PROG_ADDR, store + done)
        require_ok(backend.run(PROG_ADDR, f"store {name}"))
        raw = backend.read(CONV_OUT_ADDR, fmap_words(cfg, y.h, y.w, shape.c_out) * cfg.rows)
        got = fmap_from_bytes(cfg, raw, y.h, y.w, shape.c_out)
        want = conv2d_ref(x, wt, shape.stride, pad, requant)
        if not np.array_equal(got, want):
            bad = int((got != want).sum())
            raise AssertionError(f"calibration {name}: {bad} of {want.size} outputs differ")
        return cycles


def _model_load(tm, nbytes: int, commands: int) -> tuple[int, float]:  # noqa: ANN001
    from ..cost import CostModel

    return CostModel(tm.cfg, tm).load_cost(nbytes, commands)


def bench_calibration(cfg: AccelConfig, sim: str, out_dir: Path, convs: bool = True) -> list[dict]:
    """:class:`CalibrationBench` on ``cfg`` (the ``zcu104`` preset) with memory shrunk: the
    1x1 GEMMs, then (``convs``) the 3x3 CONVs, in one simulator run."""
    layers = calibration_layers()
    shapes = conv_calibration_layers() if convs else []
    cfg = calibration_config(cfg, layers, shapes)
    work = Path(out_dir) / f"calibration.{cfg.name}.{sim}"
    job = CalibrationBench(layers, CALIBRATION_PB, shapes, CONV_CALIBRATION_PB if convs else ())
    return run_on_rtl(cfg, job, sim=sim, workdir=work)
