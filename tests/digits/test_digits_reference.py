"""The int8 reference is exactly a chain of integer GEMMs with the hardware's requant rule."""

import numpy as np
import pytest
from sushi_hw.reference import gemm_ref


def straightforward_logits(net, sid, x):
    """An independent int8 computation from the raw shared tensors and the manifest record."""
    rec = next(r for r in net.manifest["subnets"] if r["id"] == sid)
    a = x[:, : rec["inputs"]].astype(np.int64)
    k = rec["inputs"]
    for i, w in enumerate(rec["widths"]):
        acc = a @ net.tensor(f"fc{i + 1}")[:k, :w].astype(np.int64)
        assert np.abs(acc).max() < 2**31  # no int32 wrap-around in this model
        mult, shift = rec["requant"][i]
        y = acc * mult
        if shift:
            y = (y + (1 << (shift - 1))) >> shift  # floor shift = round half up
        a = np.clip(np.maximum(y, 0), -128, 127)
        k = w
    return a @ net.tensor("head")[:k, :].astype(np.int64)


def sample_ids(net, n=24, seed=0):
    ids = [s.id for s in net.subnets()]
    rng = np.random.default_rng(seed)
    picked = {net.largest().id, net.smallest().id}
    picked.update(ids[i] for i in rng.choice(len(ids), n, replace=False))
    return sorted(picked)


def test_reference_equals_straightforward_int8(net):
    x, _ = net.test_set()
    for sid in sample_ids(net):
        got = net.reference_logits(sid, x)
        assert got.dtype == np.int32 and got.shape == (x.shape[0], 10)
        np.testing.assert_array_equal(got, straightforward_logits(net, sid, x), err_msg=sid)


def test_layer_chain_is_gemm_ref_per_layer(net):
    """Each layer's int8 [M, N] output is directly the next layer's A [M, K]."""
    x, _ = net.test_set()
    x = x[:7]
    for sid in sample_ids(net, 8, seed=1):
        layers = net.layers(sid, m=x.shape[0])
        a = x[:, : layers[0].k]
        for i, layer in enumerate(layers):
            assert a.shape == (layer.m, layer.k)
            assert layer.weight.dtype == np.int8 and layer.weight.shape == (layer.k, layer.n)
            if i + 1 < len(layers):
                assert layer.relu and layer.mult is not None
                a = gemm_ref(a, layer.weight, requant=(layer.mult, layer.shift), relu=True)
                assert a.dtype == np.int8 and a.shape[1] == layers[i + 1].k
            else:
                assert layer.name == "head" and layer.mult is None and not layer.relu
                a = gemm_ref(a, layer.weight)
        np.testing.assert_array_equal(a, net.reference_logits(sid, x))


def test_rows_are_independent(net):
    """One query (M = 1) gives the same logits as its row in a batch."""
    x, _ = net.test_set()
    sid = net.largest().id
    batch = net.reference_logits(sid, x[:5])
    for i in range(5):
        np.testing.assert_array_equal(net.reference_logits(sid, x[i]), batch[i : i + 1])


def test_constant_unit_carries_bias(net):
    """Unit 0 of every hidden layer is the integer 1/scale, for every input."""
    x, _ = net.test_set()
    for sid in sample_ids(net, 8, seed=2):
        info = net.subnet(sid)
        a = x[:, : info.config.inputs]
        for i, layer in enumerate(net.layers(sid)[:-1]):
            a = gemm_ref(a, layer.weight, requant=layer.requant, relu=True)
            assert np.all(a[:, 0] == info.act_q[i + 1])


def test_quantize_input_exact_on_digits(net):
    imgs, y = net.test_images()
    x, y2 = net.test_set()
    np.testing.assert_array_equal(y, y2)
    assert x.dtype == np.int8 and x.shape == (imgs.shape[0], 64)
    assert np.all(x[:, 0] == 112)
    np.testing.assert_array_equal(x[:, 1:], 7 * imgs[:, net.pixel_order].astype(np.int64))
    np.testing.assert_array_equal(net.quantize_input(imgs.reshape(-1, 8, 8)), x)


def test_bad_inputs_rejected(net):
    x, _ = net.test_set()
    with pytest.raises(ValueError, match="int8"):
        net.reference_logits(net.largest().id, x.astype(np.int16))
    with pytest.raises(ValueError, match="shape"):
        net.reference_logits(net.largest().id, x[:, :10])
    with pytest.raises(ValueError, match="unknown SubNet"):
        net.layers("i64-d9-1")
    with pytest.raises(ValueError, match="width 24"):
        net.subnet((64, (24,)))
    with pytest.raises(ValueError, match="shape"):
        net.quantize_input(np.zeros((3, 7)))
