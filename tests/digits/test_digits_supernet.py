"""The committed SuperNet: measured accuracies, the trade-off, and weight sharing."""

import itertools

import numpy as np
from sushi_sched.digits import SubNetConfig


def test_manifest_accuracies_are_measured(net):
    """Re-measure float and int8 accuracy of every SubNet on the held-out split."""
    net.verify()
    _, y = net.test_set()
    assert y.size == net.manifest["data"]["n_test"] >= 300
    assert net.manifest["data"]["n_train"] + y.size == net.manifest["data"]["n_total"] == 1797


def test_accuracy_spread(net):
    big, small = net.largest(), net.smallest()
    assert big.accuracy_int8 > 0.90
    assert big.accuracy_int8 > small.accuracy_int8 + 0.1
    assert big.macs > 20 * small.macs
    acc = np.array([s.accuracy_int8 for s in net.subnets()])
    assert acc.max() - acc.min() > 0.15
    # int8 stays close to float for every SubNet
    diff = [abs(s.accuracy_int8 - s.accuracy_float) for s in net.subnets()]
    assert max(diff) < 0.03


def test_more_inputs_never_hurt_much(net):
    """Elastic inputs: the cheapest-input SubNets are clearly worse than full-input ones."""
    by = {s.config: s for s in net.subnets()}
    lo = np.mean([s.accuracy_int8 for c, s in by.items() if c.inputs == 8])
    hi = np.mean([s.accuracy_int8 for c, s in by.items() if c.inputs == 64])
    assert hi > lo + 0.1


def test_subnet_info_fields(net):
    subs = net.subnets()
    assert len(subs) == len(net.spec.subnets()) == len({s.id for s in subs})
    for s in subs:
        assert isinstance(s.id, str) and isinstance(s.config, SubNetConfig)
        hash(s.config)
        assert net.subnet(s.id) is s and net.subnet(s.config) is s
        layers = net.layers(s.id)
        assert s.macs == sum(layer.m * layer.k * layer.n for layer in layers)
        assert s.weight_bytes == sum(layer.weight.nbytes for layer in layers)
        assert [layer.name for layer in layers] == [f"fc{i + 1}" for i in range(s.depth)] + ["head"]
        for layer in layers[:-1]:
            assert layer.n % 8 == 0 and layer.k % 8 == 0  # whole 8x8 tiles


def test_leading_slice_sharing(net):
    """Every SubNet's weights are the leading block of the shared tensor, so any two SubNets
    agree on their common leading block."""
    subs = net.subnets()
    for s in subs:
        for layer in net.layers(s.id):
            full = net.tensor(layer.name)
            np.testing.assert_array_equal(layer.weight, full[: layer.k, : layer.n])
    rng = np.random.default_rng(0)
    pairs = [(subs[i], subs[j]) for i, j in rng.integers(0, len(subs), (200, 2))]
    pairs.append((net.smallest(), net.largest()))
    for a, b in pairs:
        la = {x.name: x for x in net.layers(a.id)}
        lb = {x.name: x for x in net.layers(b.id)}
        for name in la.keys() & lb.keys():
            k = min(la[name].k, lb[name].k)
            n = min(la[name].n, lb[name].n)
            np.testing.assert_array_equal(la[name].weight[:k, :n], lb[name].weight[:k, :n])
    # a smaller SubNet is exactly contained in a larger one
    small = net.subnet((32, (16, 8)))
    large = net.subnet((64, (64, 32, 64)))
    for ls, ll in itertools.zip_longest(net.layers(small.id), net.layers(large.id)):
        if ls is None:
            break
        if ls.name == ll.name:
            np.testing.assert_array_equal(ls.weight, ll.weight[: ls.k, : ls.n])


def test_weights_read_only(net):
    w = net.layers(net.largest().id)[0].weight
    assert not w.flags.writeable
