"""``sushi board image / subnets / query`` and the board-serving helpers, without a board or a
simulator (the end-to-end check of the server on the board backend is ``tb/test_board.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sushi_hw.config import PRESETS
from sushi_hw.fpga.board import LinkParams
from sushi_hw.fpga.host import flash_base, flash_window
from sushi_hw.generate import BOARD_SIM_LINK, BOARD_SIM_RAM_BYTES
from sushi_sched.cli import main
from sushi_sched.compiler import WeightImage, pb_layout
from sushi_sched.digits import load_digits_supernet
from sushi_sched.runtime.board import FLASH_OFFSET, build_flash_image, program_command
from sushi_sched.runtime.memmap import MemoryMap, MemoryMapError, Workload
from sushi_sched.runtime.models import MLPModel
from sushi_sched.runtime.server import subgraph_of, subnet_info


@pytest.fixture(scope="module")
def net():
    return load_digits_supernet()


@pytest.mark.parametrize(
    "preset, board, command",
    [
        ("tiny", "icebreaker", "iceprog -o 1M {out}"),
        ("large", "ulx3s", "openFPGALoader -b ulx3s -f -o 0x100000 {out}"),
    ],
)
def test_image_is_the_compilers_layout(tmp_path, capsys, net, preset, board, command):
    out = tmp_path / "weights.bin"
    mlp = ["--supernet", "digits-mlp"]
    assert main(["board", "image", "--preset", preset, "--out", str(out), *mlp]) == 0
    printed = capsys.readouterr().out
    assert command.format(out=out) in printed, printed
    data = out.read_bytes()
    cfg = PRESETS[preset]
    assert data == build_flash_image(MLPModel(cfg, net)).data
    # the compiler's own layout of the SuperNet at the flash window's base
    tensors = {n: np.ascontiguousarray(net.tensor(n)) for n in net.tensor_names()}
    base = flash_base(cfg)
    img = WeightImage.build(cfg, tensors, base)
    assert len(data) == img.end - base <= flash_window(cfg)[1]
    at = base
    for name, blob in img.blobs.items():
        assert img.addr[name] == at  # tensors back to back, in the SuperNet's order
        assert data[at - base : at - base + len(blob)] == blob
        at += len(blob)
        # printed: tensor, accelerator address and flash byte
        assert f"{img.addr[name]:#x}" in printed
        assert f"{FLASH_OFFSET + img.addr[name] - base:#x}" in printed
    # the board designs put the image 1 MiB into the flash, where the commands write it
    assert FLASH_OFFSET == LinkParams.flash_offset == BOARD_SIM_LINK.flash_offset == 1 << 20
    # --board picks the preset; --json gives the layout
    out2 = tmp_path / "w2.bin"
    assert main(["board", "image", "--board", board, "--out", str(out2), "--json", *mlp]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert out2.read_bytes() == data and rep["preset"] == preset and rep["bytes"] == len(data)
    assert rep["program"] == {board: command.format(out=out2)}
    assert [t["tensor"] for t in rep["tensors"]] == list(img.blobs)
    assert [t["flash_offset"] for t in rep["tensors"]] == [
        FLASH_OFFSET + img.addr[n] - base for n in img.blobs
    ]


def test_image_needs_a_preset(capsys):
    assert main(["board", "image"]) == 2
    assert "--preset" in capsys.readouterr().err
    assert main(["board", "image", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_program_commands():
    assert program_command("icebreaker", "w.bin") == "iceprog -o 1M w.bin"
    assert program_command("ulx3s", "w.bin") == "openFPGALoader -b ulx3s -f -o 0x100000 w.bin"


def test_subnets_lists_keys(capsys, net):
    assert main(["board", "subnets", "--supernet", "digits-mlp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    keys = [ln.split()[0] for ln in lines[2:]]
    assert keys == [s.id for s in net.subnets()] and "i8-d2-8-16" in keys
    row = lines[2 + keys.index("i64-d3-64-64-64")].split()
    s = net.subnet("i64-d3-64-64-64")
    assert row[1] == f"{100 * s.accuracy_int8:.1f}%" and int(row[2]) == s.weight_bytes
    assert int(row[3]) == s.macs
    args = ["board", "subnets", "--json", "--preset", "tiny", "--sort", "accuracy"]
    assert main(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["supernet"] == "digits-mlp"  # tiny has no convolution hardware
    acc = [r["accuracy_int8"] for r in rep["subnets"]]
    assert len(acc) == len(net.subnets()) and acc == sorted(acc, reverse=True)
    assert all(r["tile_bytes"] >= r["weight_bytes"] for r in rep["subnets"])


def test_cnn_subnets_on_the_ulx3s_preset(capsys):
    """On a conv preset the CNN is the default; on the 16-column array only the SubNets whose
    layers are 16-channel multiples (or a tensor's full width) lower, and the list says so."""
    from sushi_sched.cnn import load_cnn_supernet

    cnn = load_cnn_supernet()
    assert main(["board", "subnets", "--preset", "large", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["supernet"] == "digits-cnn" and rep["preset"] == "large"
    rows = {r["key"]: r for r in rep["subnets"]}
    assert set(rows) == {s.id for s in cnn.subnets()}
    runs = {k for k, r in rows.items() if r["tile_bytes"] is not None}
    assert cnn.largest().id in runs and "16k3-24k3-32k1" in runs
    assert "16k3.8k3-24k3-32k3" not in runs  # an 8-channel layer of a 16-channel tensor
    assert all(rows[k]["tile_bytes"] >= rows[k]["weight_bytes"] for k in runs)
    acc = [100 * rows[k]["accuracy_int8"] for k in runs]
    doc = (Path(__file__).parents[2] / "docs" / "fpga.md").read_text()
    said = f"{len(runs)} of the {len(rows)}, from {min(acc):.1f}% to {max(acc):.1f}%"
    assert said in " ".join(doc.split()), f"docs/fpga.md should say: {said}"
    assert main(["board", "subnets", "--preset", "default", "--json"]) == 0
    on_8x8 = json.loads(capsys.readouterr().out)["subnets"]
    assert all(r["tile_bytes"] is not None for r in on_8x8)  # the demo's array runs all


def test_cnn_image_for_the_ulx3s(tmp_path, capsys):
    from sushi_sched.runtime.models import CNNModel

    out = tmp_path / "cnn.bin"
    assert main(["board", "image", "--board", "ulx3s", "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    cfg = PRESETS["large"]
    flash = build_flash_image(CNNModel(cfg))
    assert rep["supernet"] == "digits-cnn" and out.read_bytes() == flash.data
    assert rep["flash_base"] == flash_base(cfg) and len(flash.data) <= flash_window(cfg)[1]
    tensors = {t["tensor"]: t for t in rep["tensors"]}
    assert list(tensors) == list(flash.image.blobs)
    for name, t in flash.image.tensors.items():
        assert tensors[name]["addr"] == t.addr and tensors[name]["tiles"] == [t.nt, t.ct, t.taps]
        assert tensors[name]["flash_offset"] == FLASH_OFFSET + t.addr - flash_base(cfg)
    assert main(["board", "image", "--preset", "tiny", "--supernet", "digits-cnn"]) == 2
    assert "no convolution hardware" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["--subnet", "i8-d2-8-17"], "unknown SubNet 'i8-d2-8-17'"),
        (["--subnet", "i8-d2-8-16", "--cache-subgraph", "x"], "unknown SubNet 'x'"),
        (["--subnet", "i8-d2-8-16", "--image", "100000"], "--image 100000 out of range"),
        (["--subnet", "16k3-24k3-32k1", "--preset", "tiny"], "no convolution hardware"),
        (
            ["--subnet", "16k3.8k3-24k3-32k3", "--preset", "large"],
            "does not run on preset 'large' (16x16)",
        ),
        (["--subnet", "16k3-24k3-32k1", "--supernet", "digits-mlp"], "unknown SubNet"),
        (
            [
                "--subnet",
                "i8-d2-8-16",
                "--cache-subgraph",
                "i64-d3-64-64-64",
                "--preset",
                "default",
            ],
            "does not fit the PB",
        ),
    ],
)
def test_query_rejects_bad_requests_before_the_port(tmp_path, capsys, extra, msg):
    port = tmp_path / "ttyNOPE"  # never opened: the request is checked first
    assert main(["board", "query", "--port", str(port), *extra]) == 2
    err = capsys.readouterr().err
    assert msg in err and "cannot open" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_query_unknown_subnet_suggests_keys(capsys):
    assert main(["board", "query", "--port", "/dev/null", "--subnet", "i8-d2-8-17"]) == 2
    err = capsys.readouterr().err
    assert "did you mean i8-d2-8-16" in err and "sushi board subnets" in err


def test_query_missing_port_is_a_clean_error(tmp_path, capsys):
    port = tmp_path / "ttyUSB9"
    assert main(["board", "query", "--port", str(port), "--subnet", "i8-d2-8-16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sushi: error: cannot open serial port {port}")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # the link options also work before the action, and --port is required for board I/O
    assert main(["board", "--port", str(port), "status"]) == 2
    assert "cannot open serial port" in capsys.readouterr().err
    assert main(["board", "info"]) == 2
    assert "needs --port" in capsys.readouterr().err


def board_map(cfg, ram_bytes, net):
    work = Workload.of_digits(cfg, net.spec)
    return MemoryMap.plan(cfg, work, ram_bytes=ram_bytes, weight_base=flash_base(cfg), prog_slots=1)


def test_ram_map_fits_the_board_ram(net):
    cfg = PRESETS["tiny"]
    ram = board_map(cfg, BOARD_SIM_RAM_BYTES, net)
    assert ram.weights_preloaded and ram.weights == flash_base(cfg) and ram.prog_slots == 1
    regions = [
        (ram.prog, ram.prog_bytes),
        (ram.cache_prog, ram.cache_prog_bytes),
        (ram.input, ram.input_bytes),
        (ram.output, ram.output_bytes),
        (ram.scratch, ram.scratch_bytes),
    ]
    end = 0
    for addr, size in regions:
        assert addr >= end and addr % 32 == 0 and addr % cfg.mem_width == 0
        end = addr + size
    assert end == BOARD_SIM_RAM_BYTES and ram.scratch_bytes >= 64
    with pytest.raises(MemoryMapError, match="needs .* bytes of board RAM"):
        board_map(cfg, 1024, net)


def test_subgraph_layouts(net):
    cfg = PRESETS["tiny"]
    sub = subgraph_of(net, "i16-d2-16-16, i64-d1-64")
    assert dict(sub) == {"fc1": (16, 16), "head": (16, 10)}  # fc2: only in the first
    layout = pb_layout(cfg, subgraph_of(net, ["i16-d2-16-16"]))
    r = cfg.rows
    assert layout.tiles == sum(-(-g.k // r) * -(-g.n // r) for g in net.layers("i16-d2-16-16"))
    assert subnet_info(net, "i16-d2-16-16").id == "i16-d2-16-16"
