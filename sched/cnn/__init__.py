"""A convolutional weight-shared SuperNet (OFA-ResNet style) on scikit-learn's digits, trained
here in numpy, int8 for SushiAccel's CONV / ADD / POOL / GEMM commands.

Public API::

    from sushi_sched.cnn import load_cnn_supernet
    net = load_cnn_supernet()                 # the committed artefact, integrity-checked
    for s in net.subnets():                   # SubNetInfo: id, config, accuracy_val, ... params
        ...
    x, y = net.test_set()                     # int8 images [N, 8, 8, 1], labels (demo queries)
    logits = net.reference_logits(s.id, x)    # int32 [N, 10]: what the hardware must output

    from sushi_sched.cnn.lower import weight_image, pb_layout, subnet_program
    image = weight_image(cfg, net, base)      # the SuperNet's tensors in off-chip memory
    prog = subnet_program(cfg, net, s.id, image, layout, in_addr, out_addr)

See ``model`` (the SuperNet, the space, training), ``quant`` (int8 scheme), ``reference`` (the int8
forward pass), ``lower`` (programs, PB layouts), ``space`` (the scheduler's view and the SubGraph
algebra), ``store`` (files), ``train`` (the command that regenerates them) and ``check`` (a query
job for any backend: bit-exact logits, counters, model cycles).
"""

from .model import Block, SubNetConfig, SuperNetSpec, TrainSettings
from .store import load_cnn_supernet
from .supernet import CNNSuperNet, SubNetInfo

NAME = "digits-cnn"


def _space():
    from .space import DigitsCNNSpace

    return DigitsCNNSpace()


#: for ``sushi_sched.supernet.registry`` (``--supernet digits-cnn``) once it lists this package
SUPERNETS = {NAME: _space}

__all__ = [
    "NAME",
    "Block",
    "CNNSuperNet",
    "SubNetConfig",
    "SubNetInfo",
    "SuperNetSpec",
    "TrainSettings",
    "load_cnn_supernet",
]
