"""A real, small weight-shared SuperNet on scikit-learn's digits, int8 for SushiAccel.

Public API::

    from sushi_sched.digits import load_digits_supernet
    net = load_digits_supernet()            # the committed artefact, integrity-checked
    for s in net.subnets():                 # SubNetInfo: id, config, accuracy_int8, ... macs
        ...
    layers = net.layers(s.id)               # GemmLayer: name, m, k, n, weight, mult, shift, relu
    x, y = net.test_set()                   # int8 input rows [N, 64], labels [N]
    logits = net.reference_logits(s.id, x)  # int32 [N, 10]: what the hardware must output

See ``model`` for the SuperNet, ``quant`` for the int8 scheme, ``reference`` for the GEMM chain,
``store`` for the files and ``train`` for the command that regenerates them.
"""

from .model import SubNetConfig, SuperNetSpec, TrainSettings
from .reference import GemmLayer
from .store import load_digits_supernet
from .supernet import DigitsSuperNet, SubNetInfo


def _space():
    from .space import DigitsSpace

    return DigitsSpace()


#: picked up by ``sushi_sched.supernet.registry`` (``--supernet digits``)
SUPERNETS = {"digits": _space}

__all__ = [
    "DigitsSuperNet",
    "GemmLayer",
    "SubNetConfig",
    "SubNetInfo",
    "SuperNetSpec",
    "TrainSettings",
    "load_digits_supernet",
]
