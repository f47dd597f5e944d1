"""Deterministic training and an integrity-checking loader: a damaged or mismatched file is one
ValueError line naming the file."""

import json

import numpy as np
import pytest
from sushi_sched.cnn import load_cnn_supernet
from sushi_sched.cnn.store import MANIFEST_NAME, WEIGHTS_NAME, write_npz
from sushi_sched.cnn.train import main as train_main


def test_tiny_training_is_deterministic(tiny_dir, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    assert train_main(["--seed", "3", "--out", str(again), "--tiny", "--quiet"]) == 0
    assert train_main(["--seed", "4", "--out", str(other), "--tiny", "--quiet",
                       "--subnets", "2"]) == 0  # fmt: skip
    for name in (WEIGHTS_NAME, MANIFEST_NAME):
        assert (tiny_dir / name).read_bytes() == (again / name).read_bytes(), name
    assert (tiny_dir / WEIGHTS_NAME).read_bytes() != (other / WEIGHTS_NAME).read_bytes()
    m3 = json.loads((tiny_dir / MANIFEST_NAME).read_text())
    assert m3["seed"] == 3 and m3["training"]["epochs"] == 1 and len(m3["subnets"]) == 12


def test_tiny_artefact_loads_and_verifies(tiny_dir):
    net = load_cnn_supernet(tiny_dir)
    net.verify()
    assert len(net.subnets()) == 12


def _one_line_error(d, match):
    with pytest.raises(ValueError, match=match) as e:
        load_cnn_supernet(d)
    assert "\n" not in str(e.value)
    return str(e.value)


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
    _one_line_error(tiny_copy, WEIGHTS_NAME)


def test_rejects_truncated_weights(tiny_copy):
    p = tiny_copy / WEIGHTS_NAME
    p.write_bytes(p.read_bytes()[:1000])
    _one_line_error(tiny_copy, "corrupted")


def test_rejects_altered_tensor_even_if_well_formed(tiny_copy):
    with np.load(tiny_copy / WEIGHTS_NAME) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["int8.s2.b1.c1"] = arrays["int8.s2.b1.c1"].copy()
    arrays["int8.s2.b1.c1"][1, 1, 1, 1] ^= 1
    write_npz(tiny_copy / WEIGHTS_NAME, arrays)
    _one_line_error(tiny_copy, "int8.s2.b1.c1")


def test_rejects_weights_of_another_training(tiny_copy, tmp_path):
    """Both files well formed, from two seeds: the manifest's digests catch the mismatch."""
    other = tmp_path / "other"
    assert train_main(["--seed", "5", "--out", str(other), "--tiny", "--quiet",
                       "--subnets", "2"]) == 0  # fmt: skip
    (tiny_copy / WEIGHTS_NAME).write_bytes((other / WEIGHTS_NAME).read_bytes())
    _one_line_error(tiny_copy, "sha256|arrays")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["subnets"][3].update(correct_val=m["subnets"][3]["correct_val"] + 1),
         "accuracy"),
        (lambda m: m["subnets"][2]["params"].update(stem=[0, 3]), "stem"),
        (lambda m: m["subnets"][2]["params"].pop("pool"), "requantisation names"),
        (lambda m: m["subnets"][4].update(id="8k1-8k1-8k9"), "id|kernel"),
        (lambda m: m["subnets"][4].update(stages=[[[16, 3]]]), "stages"),
        (lambda m: m["subnets"].append(m["subnets"][5]), "duplicate"),
        (lambda m: m["quantization"]["weight_scale"].update(fc=0.5), "fc"),
        (lambda m: m["data"].update(n_val=3), "val_idx"),
        (lambda m: m.update(version=99), "version"),
        (lambda m: m["spec"].update(widths=[16, 24, 40]), "must be int8"),
    ],
    ids=["accuracy", "mult0", "missing_op", "bad_id", "bad_stages", "duplicate", "scale",
         "split", "version", "spec"],
)  # fmt: skip
def test_rejects_inconsistent_manifest(tiny_copy, edit, match):
    """Each error names the file it found at fault (the manifest, or the weights that do not
    fit it)."""
    _edit_manifest(tiny_copy, edit)
    msg = _one_line_error(tiny_copy, match)
    assert MANIFEST_NAME in msg or WEIGHTS_NAME in msg


def test_rejects_garbage_manifest_and_missing_files(tiny_copy):
    (tiny_copy / MANIFEST_NAME).write_text("{not json")
    _one_line_error(tiny_copy, "not valid JSON")
    with pytest.raises(FileNotFoundError):
        load_cnn_supernet(tiny_copy / "nowhere")
