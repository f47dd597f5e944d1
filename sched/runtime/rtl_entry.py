"""cocotb entry module of the RTL backend (:func:`sushi_sched.runtime.rtl.run_on_rtl` starts the
simulator with it): clock, reset, memory model from the configuration, then the job in a bridge
thread on an :class:`sushi_sched.runtime.rtl.RtlBackend`; its result goes back as a pickle. A
job for another top is a coroutine function run on the DUT directly."""

from __future__ import annotations

import os
import pickle
import traceback

import cocotb
from cocotb.task import bridge

from .rtl import JOB_ENV, TOP, AccelHost, RtlBackend, RtlJob, job_entry


@cocotb.test()
async def run_job(dut) -> None:  # noqa: ANN001
    with open(os.environ[JOB_ENV], "rb") as f:
        spec: RtlJob = pickle.load(f)
    cfg = spec.cfg
    if spec.top != TOP:  # a job that drives another top (the GEMM engine) itself
        try:
            result = (True, await spec.fn(dut, cfg))
        except Exception:  # noqa: BLE001 - handed back to the parent with its traceback
            result = (False, traceback.format_exc())
        with open(spec.result_path, "wb") as f:
            pickle.dump(result, f)
        return
    host = AccelHost(dut, cfg)
    host.start_clock()
    await host.reset()
    await host.memory_model(cfg.mem_latency, cfg.mem_bytes_per_cycle)
    backend = RtlBackend(host, spec.sim)
    result = await bridge(job_entry)(spec, backend)
    with open(spec.result_path, "wb") as f:
        pickle.dump(result, f)
