"""Deterministic training and an integrity-checking loader."""

import json

import numpy as np
import pytest
from sushi_sched.digits import load_digits_supernet
from sushi_sched.digits.store import MANIFEST_NAME, WEIGHTS_NAME, save
from sushi_sched.digits.train import main as train_main


def test_tiny_training_is_deterministic(tiny_dir, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    assert train_main(["--seed", "3", "--out", str(again), "--tiny", "--quiet"]) == 0
    assert train_main(["--seed", "4", "--out", str(other), "--tiny", "--quiet"]) == 0
    for name in (WEIGHTS_NAME, MANIFEST_NAME):
        assert (tiny_dir / name).read_bytes() == (again / name).read_bytes(), name
    assert (tiny_dir / WEIGHTS_NAME).read_bytes() != (other / WEIGHTS_NAME).read_bytes()
    m3 = json.loads((tiny_dir / MANIFEST_NAME).read_text())
    assert m3["seed"] == 3 and m3["training"]["epochs"] == 2


def test_tiny_artefact_loads_and_verifies(tiny_dir):
    net = load_digits_supernet(tiny_dir)
    net.verify()
    assert len(net.subnets()) == len(net.spec.subnets())


def _edit_manifest(d, fn):
    p = d / MANIFEST_NAME
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))


def test_rejects_flipped_weight_byte(tiny_copy):
    p = tiny_copy / WEIGHTS_NAME
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0x55
    p.write_bytes(bytes(b))
    with pytest.raises(ValueError, match=WEIGHTS_NAME):
        load_digits_supernet(tiny_copy)


def test_rejects_truncated_weights(tiny_copy):
    p = tiny_copy / WEIGHTS_NAME
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupted"):
        load_digits_supernet(tiny_copy)


def test_rejects_altered_tensor_even_if_well_formed(tiny_copy):
    """A valid .npz whose weights differ from the manifest (re-written arrays)."""
    with np.load(tiny_copy / WEIGHTS_NAME) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["int8.fc2"] = arrays["int8.fc2"].copy()
    arrays["int8.fc2"][5, 5] ^= 1
    from sushi_sched.digits.store import write_npz

    write_npz(tiny_copy / WEIGHTS_NAME, arrays)
    with pytest.raises(ValueError, match="'int8.fc2' does not match its sha256"):
        load_digits_supernet(tiny_copy)


def test_rejects_weights_of_another_run(tiny_copy, net, tmp_path):
    """The committed (seed 0, full) weights next to the tiny (seed 3) manifest."""
    from sushi_sched.digits.store import DEFAULT_DIR

    (tiny_copy / WEIGHTS_NAME).write_bytes((DEFAULT_DIR / WEIGHTS_NAME).read_bytes())
    with pytest.raises(ValueError, match="sha256"):
        load_digits_supernet(tiny_copy)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["arrays"]["int8.fc1"].update(shape=[65, 64]), "shape"),
        (lambda m: m["arrays"]["int8.head"].update(dtype="<i4"), "dtype"),
        (lambda m: m["spec"].update(widths=[8, 16, 32, 128]), "fc1"),
        (lambda m: m["subnets"].pop(5), "missing"),
        (lambda m: m["subnets"][3].update(id="i8-d1-16"), "does not match its config"),
        (lambda m: m["subnets"][3].update(macs=1), "macs"),
        (lambda m: m["subnets"][3].update(accuracy_int8=0.999), "accuracy"),
        (lambda m: m["subnets"][3]["requant"][0].__setitem__(0, 70000), "multiplier"),
        (lambda m: m["subnets"][3]["requant"][0].__setitem__(1, 2), "constant unit"),
        (lambda m: m["subnets"][3]["act_q"].__setitem__(1, 200), "act_q"),
        (lambda m: m["quantization"]["weight_inv_scale"].update(fc1=3), "constant unit"),
        (lambda m: m.update(version=99), "version"),
        (lambda m: m.update(weights_file="../x.npz"), "plain"),
        (lambda m: m.pop("subnets"), "missing key 'subnets'"),
    ],
)
def test_rejects_mismatched_manifest(tiny_copy, edit, match):
    _edit_manifest(tiny_copy, edit)
    with pytest.raises(ValueError, match=match):
        load_digits_supernet(tiny_copy)


def test_rejects_invalid_json(tiny_copy):
    (tiny_copy / MANIFEST_NAME).write_text('{"format": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        load_digits_supernet(tiny_copy)


def test_consistent_but_false_accuracy_caught_by_verify(tiny_copy):
    def lie(m):
        s = m["subnets"][0]
        s["correct_int8"] = (s["correct_int8"] + 7) % (m["data"]["n_test"] + 1)
        s["accuracy_int8"] = s["correct_int8"] / m["data"]["n_test"]

    _edit_manifest(tiny_copy, lie)
    net = load_digits_supernet(tiny_copy)  # self-consistent, so it loads...
    with pytest.raises(ValueError, match="manifest says"):
        net.verify()  # ...but re-measuring exposes it


def test_missing_files(tmp_path, tiny_dir):
    with pytest.raises(FileNotFoundError):
        load_digits_supernet(tmp_path)
    (tmp_path / MANIFEST_NAME).write_bytes((tiny_dir / MANIFEST_NAME).read_bytes())
    with pytest.raises(FileNotFoundError, match="weights file"):
        load_digits_supernet(tmp_path)


def test_save_roundtrip(tiny_dir, tmp_path):
    net = load_digits_supernet(tiny_dir)
    with np.load(tiny_dir / WEIGHTS_NAME) as z:
        arrays = {k: z[k] for k in z.files}
    m = {k: v for k, v in net.manifest.items() if k not in ("arrays", "weights_file_sha256")}
    save(tmp_path, arrays, m)
    assert (tmp_path / WEIGHTS_NAME).read_bytes() == (tiny_dir / WEIGHTS_NAME).read_bytes()
    assert (tmp_path / MANIFEST_NAME).read_bytes() == (tiny_dir / MANIFEST_NAME).read_bytes()
