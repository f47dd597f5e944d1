"""The cost model at the calibration's layer shapes (numbers from ``make bench``'s
calibration.json on the zcu104 RTL: 1x1 GEMMs and 3x3 CONVs) and the dynamic-buffer bound of
the GEMM recurrence."""

import random

import pytest
from sushi_hw.config import make_config
from sushi_sched.timing import TimingModel

ZCU = make_config("zcu104", mem_bytes=4 << 20)  # as the calibration bench runs it

# (M, K-tiles, N-tiles, PB K-tiles, PB N-tiles): RTL cycles (doorbell to done, GEMM + DONE)
RTL = {
    (3136, 2, 3, 0, 0): 19086,  # s0b0.conv1, compute-bound
    (49, 32, 64, 0, 0): 133374,  # s3b0.down, weight-bound
    (49, 32, 64, 32, 64): 100554,  # s3b0.down from the PB
    (49, 23, 64, 23, 32): 79941,  # s3b3.conv3, half its N-tiles in the PB, the rest streamed
}


# 3x3 CONVs (pixels, channel tiles, taps, N-tiles, PB block (pb_nt, pb_ct, pb_t)): RTL cycles
# (doorbell to done, CONV + DONE), outputs checked bit-exactly by the bench
RTL_CONV = {
    (12544, 1, 9, 1, (0, 0, 0)): 113298,  # stem1, 112x112x32 -> 32
    (3136, 3, 9, 3, (0, 0, 0)): 254418,  # s0b0.conv2, 56x56x88 -> 88
    (49, 23, 9, 23, (0, 0, 0)): 309851,  # s3b3.conv2, 7x7x720 -> 720, weight-bound
    (49, 23, 9, 23, (9, 23, 9)): 275826,  # s3b3.conv2, 9 of 23 N-tiles in the PB
}


@pytest.mark.parametrize("shape", list(RTL))
def test_model_within_5_percent_of_the_rtl(shape):
    tm = TimingModel(ZCU)
    model = tm.query_overhead + 2 * tm.cmd_cycles + tm.gemm_cycles(*shape)
    assert abs(model - RTL[shape]) / RTL[shape] < 0.05


@pytest.mark.parametrize("shape", list(RTL_CONV))
def test_conv_model_within_5_percent_of_the_rtl(shape):
    tm = TimingModel(ZCU)
    model = tm.query_overhead + 2 * tm.cmd_cycles + tm.conv_cycles(*shape)
    assert abs(model - RTL_CONV[shape]) / RTL_CONV[shape] < 0.05


def test_the_bound_only_matters_when_the_stream_outruns_the_dynamic_buffer():
    rng = random.Random(1)
    big = TimingModel(make_config("zcu104", dyn_bytes=64 << 20))  # never binds
    for _ in range(100):
        m = rng.choice([1, 7, 49, 196, 1500])
        kt, nt = rng.randint(1, 12), rng.randint(1, 12)
        pk, pn = rng.randint(1, kt), rng.randint(1, nt)
        if pk * pn == kt * nt:
            continue
        # without the bound: off-chip tile r lands at start0 + r * fetch (the free stream)
        t = last = 0
        r = 0
        start0 = big.cfg.mem_latency + big.first_fetch
        for rows in big.m_tiles(m):
            period = max(rows, big.cfg.rows + big.pb_tile_overhead)
            for j in range(nt):
                for i in range(kt):
                    t += last
                    last = period
                    if not (j < pn and i < pk):
                        t = max(t, start0 + r * big.mem_fetch_cycles)
                        r += 1
        free = t + big.m_tiles(m)[-1] + big.gemm_overhead
        assert big.gemm_cycles(m, kt, nt, pk, pn) == free
    # a small dynamic buffer: PB tiles in front cannot hide more than it holds
    small = TimingModel(ZCU)
    assert small.gemm_cycles(49, 23, 64, 23, 32) > big.gemm_cycles(49, 23, 64, 23, 32)
