import pytest
from sushi_hw.config import make_config
from sushi_sched.simulate import Setup
from sushi_sched.supernet import get_supernet


@pytest.fixture(scope="session")
def r50():
    return get_supernet("ofa-resnet50")


@pytest.fixture(scope="session")
def mbv3():
    return get_supernet("ofa-mbv3")


@pytest.fixture(scope="session")
def zcu_setup(r50):
    return Setup.build(r50, make_config("zcu104"))
