"""Icarus harness for designs with vendor primitives: a design and its plain-Amaranth twin run
side by side on the same stimulus, with behavioural models of the primitives."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from sushi_tb.runner import _icarus_time0_fix, require_simulator


class Flat(wiring.Component):
    """``dut`` with its inputs packed into ``stim`` and its outputs into ``resp`` (LSB first in
    the order given), so that one generic Verilog testbench drives any design."""

    def __init__(self, dut, inputs: list[str], outputs: list[str]):
        self.dut, self.inputs, self.outputs = dut, inputs, outputs
        iw = sum(len(Value.cast(getattr(dut, n))) for n in inputs)
        ow = sum(len(Value.cast(getattr(dut, n))) for n in outputs)
        super().__init__({"stim": In(iw), "resp": Out(ow)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        ins = Cat(*(Value.cast(getattr(self.dut, n)) for n in self.inputs))
        outs = Cat(*(Value.cast(getattr(self.dut, n)) for n in self.outputs))
        m.d.comb += [ins.eq(self.stim), self.resp.eq(outs)]
        return m


_TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0;
  reg [{iw}:0] stim;
  reg [{iw}:0] mem [0:{n}];
  wire [{ow}:0] resp_dut, resp_ref;
  integer f, i;
  {dut} u_dut(.clk(clk), .rst(rst), .stim(stim), .resp(resp_dut));
  {ref} u_ref(.clk(clk), .rst(rst), .stim(stim), .resp(resp_ref));
  initial begin
    $readmemh("{stim_file}", mem);
    f = $fopen("{resp_file}", "w");
    for (i = 0; i <= {n}; i = i + 1) begin
      stim = mem[i];
      #4;  // outputs of cycle i settle, then sample them before the clock edge
      $fwrite(f, "%h %h\\n", resp_dut, resp_ref);
      #1 clk = 1;
      #5 clk = 0;
    end
    $fclose(f);
    $finish;
  end
endmodule
"""


def run_side_by_side(
    tmp: Path, dut, ref, stim: list[int], models: Sequence[Path], undefined_cycles: int = 0
) -> tuple[list[int], list[int], str]:
    """Simulate ``dut`` and ``ref`` (each an elaboratable wrapped in :class:`Flat`)
    on ``stim`` (one packed input word per cycle) under Icarus, with the Verilog ``models``
    of the vendor primitives they instantiate; returns both designs' packed
    outputs per cycle (sampled at the end of the cycle, before the clock edge) and the
    Verilog of ``dut``. Undefined output bits fail, except in the first ``undefined_cycles``
    cycles (where they read as -1)."""
    require_simulator("icarus")
    files, widths = [], None
    texts = {}
    for name, top in (("dut_top", dut), ("ref_top", ref)):
        text = verilog.convert(top, name=name)
        texts[name] = text
        path = tmp / f"{name}.v"
        path.write_text(text)
        files.append(_icarus_time0_fix(path))
        w = (len(top.stim), len(top.resp))
        assert widths in (None, w)
        widths = w
    iw, ow = widths
    (tmp / "stim.hex").write_text("".join(f"{x:x}\n" for x in stim))
    tb = tmp / "tb.v"
    tb.write_text(
        _TB.format(
            iw=iw - 1,
            ow=ow - 1,
            n=len(stim) - 1,
            dut="dut_top",
            ref="ref_top",
            stim_file=tmp / "stim.hex",
            resp_file=tmp / "resp.txt",
        )
    )
    vvp = tmp / "sim.vvp"
    cmd = [
        "iverilog",
        "-g2012",
        "-s",
        "tb",
        "-o",
        str(vvp),
        str(tb),
        *map(str, models),
        *map(str, files),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    run = subprocess.run(["vvp", "-n", str(vvp)], capture_output=True, text=True, cwd=tmp)
    assert run.returncode == 0 and "fatal" not in run.stdout.lower(), run.stdout + run.stderr
    dut_out, ref_out = [], []
    for t, line in enumerate((tmp / "resp.txt").read_text().splitlines()):
        words = line.split()
        for word, out in zip(words, (dut_out, ref_out), strict=True):
            if re.search(r"[xz]", word, re.I):
                if t >= undefined_cycles:
                    raise AssertionError(f"undefined bits in the outputs of cycle {t}: {line}")
                out.append(-1)
            else:
                out.append(int(word, 16))
    assert len(dut_out) == len(stim)
    return dut_out, ref_out, texts["dut_top"]
