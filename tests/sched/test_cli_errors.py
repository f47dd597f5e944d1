"""Bad input to every ``sushi`` command: one line naming the problem, a non-zero exit (2), never a
traceback (issue 24, "clean errors everywhere").

Each case runs ``sushi_sched.cli.main`` in-process in a scratch directory holding the files the
table names. Nothing here builds or runs RTL: the simulator, the FPGA flow and the Verilog
conversion are replaced by stubs that fail the test if a case gets that far.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

import numpy as np
import pytest
from sushi_sched.cli import main

TRACE_HEAD = "t_ms,acc_floor,slo_ms\n"


def _files(d) -> None:
    np.save(d / "a.npy", np.ones((2, 4), np.int8))
    np.save(d / "w.npy", np.ones((4, 2), np.int8))
    np.save(d / "w_k3.npy", np.ones((3, 2), np.int8))
    np.save(d / "a_f32.npy", np.zeros((2, 4), np.float32))
    np.save(d / "a_1d.npy", np.zeros(4, np.int8))
    np.save(d / "x.npy", np.ones((4, 4, 2), np.int8))
    np.save(d / "wc.npy", np.ones((2, 2, 3, 3), np.int8))
    np.save(d / "obj.npy", np.array([{1: 2}], dtype=object), allow_pickle=True)
    np.savez(d / "z.npz", a=np.ones(2))
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "empty.npy").write_bytes(b"")
    (d / "afile").write_text("x")
    (d / "t_frac.csv").write_text(TRACE_HEAD + "0,0.7,100\n1,0.71,100\n")
    (d / "t_cols.csv").write_text(TRACE_HEAD + "0,70\n")
    (d / "t_word.csv").write_text(TRACE_HEAD + "0,abc,100\n")
    (d / "t_header.csv").write_text("time,acc,slo\n0,70,100\n")
    (d / "t_bom.csv").write_text(TRACE_HEAD + "0,70,100\n", encoding="utf-8-sig")
    (d / "t_bin.csv").write_bytes(bytes(range(256)) * 4)
    (d / "t_empty.csv").write_text("")
    (d / "t_head_only.csv").write_text(TRACE_HEAD)
    (d / "t_back.csv").write_text(TRACE_HEAD + "5,70,100\n1,70,100\n")


GEMM = "gemm --a a.npy --w w.npy --out o.npy"
CONV = "conv --x x.npy --w wc.npy --out o.npy --backend golden"
SIM = "simulate --trace phases --queries 10 --json s.json --no-progress"
SIMF = "simulate --json s.json --no-progress --trace-file"
TRACE = "trace phases --out t.csv --queries 10"
DEMO = "demo --backend golden --queries 5 --out dout"
BIT = "bitstream --board icebreaker"

# (command line, a piece of the one-line message)
CASES = [
    # gemm: input files, shapes, options, the output path
    ("gemm --a nope.npy --w w.npy --out o.npy", "does not exist"),
    ("gemm --a a_f32.npy --w w.npy --out o.npy", "must be int8, got float32"),
    ("gemm --a a_1d.npy --w w.npy --out o.npy", "must be 2-D"),
    ("gemm --a garbage.npy --w w.npy --out o.npy", "is not a .npy array file"),
    ("gemm --a empty.npy --w w.npy --out o.npy", "is not a .npy array file"),
    ("gemm --a obj.npy --w w.npy --out o.npy", "is not a .npy array file"),
    ("gemm --a z.npz --w w.npy --out o.npy", "is not a single .npy array"),
    ("gemm --a . --w w.npy --out o.npy", "does not exist"),
    ("gemm --a a.npy --w w_k3.npy --out o.npy", "must equal W's K"),
    (f"{GEMM} --requant 1", "MULT,SHIFT"),
    (f"{GEMM} --requant 0,99", "multiplier 0"),
    (f"{GEMM} --preset nope", "unknown preset 'nope'"),
    (f"{GEMM} --set rows=3", "field 'rows'"),
    (f"{GEMM} --set bogus=3", "unknown config field 'bogus'"),
    (f"{GEMM} --set rows", "FIELD=VALUE"),
    (f"{GEMM} --set clock_mhz=inf", "field 'clock_mhz'"),
    (f"{GEMM} --set clock_mhz=nan", "field 'clock_mhz'"),
    (f"{GEMM} --set conv=maybe", "not true or false"),
    (f"{GEMM} --sim foo", "unknown simulator 'foo'"),
    ("gemm --a a.npy --w w.npy --out afile/o.npy", "afile is a file, not a directory"),
    ("gemm --a a.npy --w w.npy --out .", "is a directory"),
    ("gemm --a a.npy --w w.npy", "the following arguments are required: --out"),
    # conv (golden backend)
    (f"{CONV} --pad 5", "--pad 5"),
    (f"{CONV} --pad -1", "--pad -1"),
    (f"{CONV} --stride 3", "--stride 3"),
    (f"{CONV} --bias b.npy", "--bias is not supported"),
    (f"{CONV} --preset tiny", "no convolution hardware"),
    (f"{CONV} --requant 1,40", "shift 40"),
    ("conv --x x.npy --w wc.npy --out o.npy --backend foo", "unknown backend 'foo'"),
    ("conv --x x.npy --w w.npy --out o.npy --backend golden", "must be 4-D"),
    ("conv --x a.npy --w wc.npy --out o.npy --backend golden", "must be 3-D"),
    ("conv --x empty.npy --w wc.npy --out o.npy --backend golden", "is not a .npy array"),
    ("conv --x x.npy --w wc.npy --out afile/o.npy --backend golden", "is a file"),
    ("conv --x x.npy --w wc.npy --out . --backend golden", "is a directory"),
    ("conv --x x.npy --w wc.npy --out /proc/sushi/o.npy --backend golden", "/proc/sushi"),
    # simulate: generated traces, options, output paths
    (f"{SIM} --phase-len 0", "--phase-len"),
    (f"{SIM} --phase-len -5", "--phase-len"),
    (f"{SIM} --phase-len 0.5", "--phase-len"),
    (f"{SIM} --seed -1", "--seed must be >= 0"),
    (f"{SIM} --load 0", "load must be in"),
    (f"{SIM} --load inf", "load must be in"),
    (f"{SIM} --policies foo", "unknown policy foo"),
    (f"{SIM} --policies ,", "unknown policy"),
    (f"{SIM} --policies sushi,sushi", "listed twice"),
    (f"{SIM} --supernet nope", "unknown SuperNet 'nope'"),
    (f"{SIM} --update-every 0", "update_every"),
    (f"{SIM} --window 0", "window"),
    (f"{SIM} --set max_dim=8", "field 'max_dim'"),
    (f"{SIM} --set mem_bytes=1000", "field 'mem_bytes'"),
    (f"{SIM} --objective speed", "invalid choice: 'speed'"),
    ("simulate --trace phases --queries 0 --json s.json", "--queries must be >= 1"),
    ("simulate --trace phases --queries 10 --json . --no-progress", "--json .: is a directory"),
    ("simulate --trace phases --queries 10 --json afile/s.json", "afile is a file"),
    ("simulate --trace phases --queries 10 --json /proc/sushi/s.json", "/proc/sushi"),
    ("simulate --trace phases --queries 10 --json s.json --plots afile", "--plots afile"),
    ("simulate --trace phases --trace-file t.csv --json s.json", "not allowed with"),
    ("simulate --queries 10 --json s.json", "one of the arguments --trace --trace-file"),
    # simulate: trace files
    (f"{SIMF} nope.csv", "nope.csv: the trace file does not exist"),
    (f"{SIMF} .", "is a directory"),
    (f"{SIMF} t_frac.csv", "percent"),
    (f"{SIMF} t_cols.csv", "t_cols.csv:2: expected 3 columns"),
    (f"{SIMF} t_word.csv", "t_word.csv:2: acc_floor 'abc' is not a number"),
    (f"{SIMF} t_header.csv", "t_header.csv:1: expected header"),
    (f"{SIMF} t_bom.csv", "t_bom.csv: starts with a UTF-8 byte-order mark"),
    (f"{SIMF} t_bin.csv", "t_bin.csv: not a text CSV file"),
    (f"{SIMF} t_empty.csv", "t_empty.csv: empty trace"),
    (f"{SIMF} t_head_only.csv", "no queries"),
    (f"{SIMF} t_back.csv", "before the previous query"),
    # trace
    (f"{TRACE} --phase-len 0", "--phase-len"),
    (f"{TRACE} --seed -1", "--seed must be >= 0"),
    (f"{TRACE} --supernet nope", "unknown SuperNet"),
    (f"{TRACE} --load 0", "load must be in"),
    ("trace phases --out t.csv --queries 0", "--queries must be >= 1"),
    ("trace phases --out t.csv --queries -1", "--queries must be >= 1"),
    ("trace phases --out afile/t.csv --queries 10", "afile is a file"),
    ("trace phases --out . --queries 10", "is a directory"),
    ("trace nope --out t.csv", "invalid choice: 'nope'"),
    ("trace phases", "required: --out"),
    # supernet
    ("supernet show nope", "unknown SuperNet 'nope'"),
    ("supernet show ofa-resnet50 --set rows=4", "--set needs --preset"),
    ("supernet show ofa-resnet50 --preset nope", "unknown preset"),
    ("supernet show ofa-resnet50 --preset tiny --set rows=3", "field 'rows'"),
    ("supernet", "required"),
    # demo on the golden model
    ("demo --backend golden --queries 0 --out dout", "--queries must be >= 1"),
    (f"{DEMO} --phase-len 0", "--phase-len"),
    (f"{DEMO} --seed -2", "--seed must be >= 0"),
    (f"{DEMO} --update-every 0", "--update-every must be >= 1"),
    (f"{DEMO} --policies nope", "unknown policy nope"),
    (f"{DEMO} --policies oracle", "unknown policy oracle"),
    (f"{DEMO} --trace-file t_frac.csv", "percent"),
    (f"{DEMO} --trace-file t_bin.csv", "not a text CSV file"),
    (f"{DEMO} --trace-file nope.csv", "does not exist"),
    (f"{DEMO} --preset nope", "unknown preset"),
    (f"{DEMO} --set clock_mhz=inf", "field 'clock_mhz'"),
    (f"{DEMO} --load 0", "load must be in"),
    ("demo --backend nope --queries 5 --out dout", "unknown backend 'nope'"),
    ("demo --backend golden --queries 5 --out afile", "afile is a file"),
    # soak (all rejected before any query is served)
    ("soak --queries 0 --out sout", "--queries must be >= 1"),
    ("soak --queries 5 --fault-rate 1.5 --out sout", "--fault-rate must be a probability"),
    ("soak --queries 5 --fault-rate nan --out sout", "--fault-rate must be a probability"),
    ("soak --queries 5 --faults hang,nope --out sout", "--faults 'hang,nope'"),
    ("soak --queries 5 --faults hang,hang --out sout", "give distinct kinds"),
    ("soak --queries 5 --backend nope --out sout", "unknown backend 'nope'"),
    ("soak --queries 5 --backend rtl --sim nope --out sout", "unknown simulator 'nope'"),
    ("soak --queries 5 --supernet nope --out sout", "unknown SuperNet 'nope'"),
    ("soak --queries 5 --supernet digits-cnn --preset tiny --out sout", "no convolution"),
    ("soak --queries 5 --seed -1 --out sout", "--seed must be >= 0"),
    ("soak --queries 5 --preset nope --out sout", "unknown preset"),
    ("soak --queries 5 --out afile", "afile is a file"),
    # verilog
    ("verilog --preset nope --out vout", "unknown preset 'nope'"),
    ("verilog --preset tiny --set rows=3 --out vout", "field 'rows'"),
    ("verilog --preset tiny --jobs 0 --out vout", "--jobs must be at least 1"),
    ("verilog --preset tiny --top sushi_gemm --out afile", "afile is a file"),
    ("verilog --preset tiny --top nope", "invalid choice: 'nope'"),
    # bitstream: the fit check only, or an error before any tool runs
    ("bitstream --board nope --check-only", "unknown board 'nope'"),
    (f"{BIT} --check-only --preset large", "does not fit icebreaker"),
    (f"{BIT} --check-only --preset nope", "unknown preset"),
    (f"{BIT} --check-only --set rows=3", "field 'rows'"),
    (f"{BIT} --check-only --set clock_mhz=inf", "field 'clock_mhz'"),
    (f"{BIT} --check-only --jobs 0", "--jobs must be at least 1"),
    (f"{BIT} --check-only --seed x", "is not a seed"),
    (f"{BIT} --check-only --estimate", "exclude each other"),
    (f"{BIT} --out afile", "afile is a file"),
    (f"{BIT} --timeout 0", "--timeout must be > 0"),
    (f'{BIT} --nextpnr-args "\'--x"', "No closing quotation"),
    ("bitstream --check-only", "required: --board"),
    # the command itself
    ("nope", "invalid choice: 'nope'"),
    ("", "required: COMMAND"),
]


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    _files(tmp_path)
    monkeypatch.chdir(tmp_path)

    def reached(*a, **k):
        raise AssertionError("a bad-input case reached the RTL or the FPGA tools")

    import sushi_hw.fpga.flow as flow
    import sushi_sched.commands.verilog as verilog_cmd
    import sushi_sched.runtime.rtl as rtl

    monkeypatch.setattr(rtl, "run_on_rtl", reached)
    monkeypatch.setattr(rtl, "build", reached)
    monkeypatch.setattr(flow, "build_bitstream", reached)
    monkeypatch.setattr(verilog_cmd, "ProcessPoolExecutor", reached)
    return tmp_path


@pytest.mark.parametrize("line,message", CASES, ids=[c[0] or "(none)" for c in CASES])
def test_bad_input_is_one_line(scratch, capsys, line, message):
    try:
        rc = main(shlex.split(line))
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 2, f"exit {rc}, stderr: {err!r}"
    assert "Traceback" not in err
    # argparse prints its usage first; the message itself is one line
    msg = [x for x in lines if "error:" in x]
    assert len(msg) == 1, err
    assert not [x for x in lines if "error:" not in x and not x.startswith(("usage:", " "))], err
    assert message in msg[0], msg[0]


def test_queries_in_file_counts_the_whole_file(scratch, capsys):
    """``queries_in_file`` is the file's count, not the count after ``--queries``."""
    import json

    rows = "".join(f"{i},60,1000\n" for i in range(12))
    (scratch / "t.csv").write_text(TRACE_HEAD + rows)
    rc = main(
        shlex.split(
            "simulate --supernet digits --preset tiny --trace-file t.csv --queries 5 "
            "--policies no_pb --json s.json --no-progress --no-timing"
        )
    )
    assert rc == 0
    rep = json.loads((scratch / "s.json").read_text())
    assert rep["config"]["trace"]["queries_in_file"] == 12


@pytest.mark.parametrize("how", ["module", "script"])
def test_console_script_has_no_traceback(tmp_path, how):
    """The entry points, end to end, on one bad input: ``python -m sushi_sched.cli`` and the
    installed ``sushi`` script."""
    import shutil
    from pathlib import Path

    script = shutil.which("sushi", path=str(Path(sys.executable).parent))
    if how == "script" and script is None:
        pytest.skip("the sushi script is not installed beside this Python")
    head = [sys.executable, "-m", "sushi_sched.cli"] if how == "module" else [script]
    r = subprocess.run(
        [
            *head,
            "trace",
            "phases",
            "--out",
            "t.csv",
            "--phase-len",
            "0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--phase-len" in r.stderr
