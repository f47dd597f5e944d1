import shutil

import pytest
from sushi_sched.cnn import load_cnn_supernet
from sushi_sched.cnn.train import main as train_main


@pytest.fixture(scope="session")
def net():
    """The committed artefact (sched/data/digits_cnn.*)."""
    return load_cnn_supernet()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A freshly trained --tiny artefact (seed 3: 1 epoch, 12 SubNets)."""
    d = tmp_path_factory.mktemp("cnn_tiny_seed3")
    assert train_main(["--seed", "3", "--out", str(d), "--tiny", "--quiet"]) == 0
    return d


@pytest.fixture
def tiny_copy(tiny_dir, tmp_path):
    """A private copy of the tiny artefact that a test may damage."""
    for f in tiny_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path
