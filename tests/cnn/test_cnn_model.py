"""The CNN SuperNet's space, float training gradients, the int8 reference and the committed
accuracy table."""

import numpy as np
import pytest
from sushi_sched.cnn import data, model
from sushi_sched.cnn.model import Block, SubNetConfig, SuperNetSpec
from sushi_sched.cnn.reference import int8_forward, int8_forward_ops

SPEC = SuperNetSpec()


def test_space_and_ids():
    assert SPEC.size() == 20 * 42 * 72
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = SPEC.sample(rng)
        assert SPEC.check(c.id) == c == SPEC.check(c.as_json())
    big = SPEC.largest()
    assert big.id == "16k3.16k3-24k3.24k3-32k3.32k3" and SPEC.smallest().id == "8k1-8k1-8k1"
    for bad, match in (("8k1-8k1", "stages"), ("8k1-8k1-8k2", "kernel"), ("8k1-8k1-40k1", "width"),
                       ("8k1.8k1.8k1-8k1-8k1", "depth"), ("x", "like")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            SPEC.check(bad)


def test_plan_shapes_and_leading_slices():
    shapes = SPEC.tensor_shapes()
    ops = SPEC.plan(SPEC.largest())
    assert [op.h_out for op in ops if op.kind == "add"] == [8, 8, 4, 4, 2, 2]
    for op in ops:
        if op.kind == "conv":
            full = shapes[op.name]
            assert op.c_out <= full[0] and op.c_in <= full[1] and op.k <= full[2]
            assert op.c_out % 8 == 0 or op.c_out == full[0]  # whole output tiles
    assert ops[-1].kind == "fc" and ops[-2].kind == "pool"
    cfg = SubNetConfig(((Block(8, 1), Block(16, 3)), (Block(24, 1),), (Block(8, 3),) * 2))
    names = [op.name for op in SPEC.plan(cfg) if op.kind == "conv"]
    assert names == ["stem", "s1.b1.c1", "s1.b1.c2", "s1.b2.c1", "s1.b2.c2", "s2.b1.c1",
                     "s2.b1.c2", "s2.b1.sc", "s3.b1.c1", "s3.b1.c2", "s3.b1.sc", "s3.b2.c1",
                     "s3.b2.c2"]  # fmt: skip


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    params = model.init_params(SPEC, rng)
    images, labels = data.load_raw()
    x, y = data.float_images(images[:4]), labels[:4]
    cfg = SubNetConfig(((Block(8, 1),), (Block(16, 3), Block(8, 1)), (Block(24, 3),)))

    def loss(p):
        z = model.forward(SPEC, p, cfg, x)
        z = z - z.max(1, keepdims=True)
        return float(-(z[np.arange(4), y] - np.log(np.exp(z).sum(1))).sum())

    logits, vals, cache, ops = model.forward(SPEC, params, cfg, x, keep=True)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    model.backward(SPEC, params, vals, cache, ops, model._softmax(logits) - np.eye(10)[y], grads)
    assert not grads["s1.b2.c1"].any()  # not in the SubNet
    for name in ("stem", "s1.b1.c1", "s2.b1.sc", "s2.b2.c2", "s3.b1.c1", "fc"):
        idx = tuple(np.argwhere(grads[name] != 0)[0])
        q = {k: v.copy() for k, v in params.items()}
        q[name][idx] += 1e-6
        assert (loss(q) - loss(params)) / 1e-6 == pytest.approx(grads[name][idx], rel=1e-3)


def test_batched_int8_forward_is_the_operator_reference(net):
    x, _ = net.val_set()
    for s in net.subnets()[:6]:
        ops = net.ops(s.id)
        w8 = {n: net.tensor(n) for n in net.tensor_names()}
        batch = int8_forward(net.spec, w8, ops, s.params, x[:8])
        for i in range(8):
            assert np.array_equal(batch[i], int8_forward_ops(net.spec, w8, ops, s.params, x[i]))


def test_committed_table(net):
    subs = net.subnets()
    assert len(subs) >= 50
    val = [s.accuracy_val for s in subs]
    assert max(val) - min(val) >= 0.10
    assert net.largest().accuracy_val >= 0.95
    m = net.manifest["data"]
    assert m["n_train"] + m["n_val"] + m["n_test"] == m["n_total"]


def test_committed_artefact_verifies(net):
    """Re-measures every 10th SubNet of the table (all of them: ``net.verify()``, ~1 min)."""
    net.verify(every=10)
