"""cocotb entry module of the RTL backend (:func:`sushi_sched.runtime.rtl.run_on_rtl` starts the
simulator with it): clock, reset, memory model from the configuration, then the job in a bridge
thread on an :class:`sushi_sched.runtime.rtl.RtlBackend`; its result goes back as a pickle."""

from __future__ import annotations

import os
import pickle

import cocotb
from cocotb.task import bridge

from .rtl import JOB_ENV, AccelHost, RtlBackend, RtlJob, job_entry


@cocotb.test()
async def run_job(dut) -> None:  # noqa: ANN001
    with open(os.environ[JOB_ENV], "rb") as f:
        spec: RtlJob = pickle.load(f)
    cfg = spec.cfg
    host = AccelHost(dut, cfg)
    host.start_clock()
    await host.reset()
    await host.memory_model(cfg.mem_latency, cfg.mem_bytes_per_cycle)
    backend = RtlBackend(host, spec.sim)
    result = await bridge(job_entry)(spec, backend)
    with open(spec.result_path, "wb") as f:
        pickle.dump(result, f)
