"""Save and load the digits CNN SuperNet artefact, with integrity checks.

Two files side by side, written byte-for-byte deterministically (the MLP's writer,
``sushi_sched.digits.store``): ``digits_cnn.json`` (the manifest: seed, training settings,
SubNet space, split sizes, weight scales, per-SubNet requantisation and measured accuracies, the
sha256 of every array and of the weights file) and ``digits_cnn.npz`` (int8 and float weights,
split indices). :func:`load_cnn_supernet` re-checks everything it can without re-training (digests,
shapes, that the int8 tensors are the quantised float ones, that every SubNet's requantisation
fits its plan and the hardware's fields, the split) and raises ``ValueError`` with one line naming
the file and the problem; it never returns a partly valid model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..digits.store import dump_manifest, sha256_array, sha256_file, write_npz
from . import data
from .model import SubNetConfig, SuperNetSpec, macs, weight_bytes
from .quant import check_params
from .supernet import CNNSuperNet, SubNetInfo

FORMAT = "sushi-digits-cnn-supernet"
VERSION = 1
MANIFEST_NAME = "digits_cnn.json"
WEIGHTS_NAME = "digits_cnn.npz"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data"
_SPLITS = ("train_idx", "val_idx", "test_idx")


def subnet_record(s: SubNetInfo) -> dict:
    return {
        "id": s.id,
        "stages": s.config.as_json(),
        "macs": s.macs,
        "weight_bytes": s.weight_bytes,
        "accuracy_val": s.accuracy_val,
        "accuracy_test": s.accuracy_test,
        "accuracy_val_float": s.accuracy_val_float,
        "correct_val": s.correct_val,
        "correct_test": s.correct_test,
        "correct_val_float": s.correct_val_float,
        "params": {k: list(v) for k, v in s.params.items()},
    }


def save(out_dir: str | Path, arrays: dict[str, np.ndarray], manifest: dict) -> tuple[Path, Path]:
    """Write ``arrays`` and ``manifest`` (completed with array and file digests)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    npz_path, json_path = out / WEIGHTS_NAME, out / MANIFEST_NAME
    write_npz(npz_path, arrays)
    manifest = dict(manifest)
    manifest["weights_file"] = WEIGHTS_NAME
    manifest["weights_file_sha256"] = sha256_file(npz_path)
    manifest["arrays"] = {
        name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": sha256_array(a)}
        for name, a in arrays.items()
    }
    json_path.write_text(dump_manifest(manifest))
    return json_path, npz_path


# ---- loading -------------------------------------------------------------------------------
def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{where}: {msg}")


def _manifest_path(path: str | Path | None) -> Path:
    if path is None:
        return DEFAULT_DIR / MANIFEST_NAME
    p = Path(path)
    if p.is_dir():
        return p / MANIFEST_NAME
    return p.with_suffix(".json") if p.suffix == ".npz" else p


def load_cnn_supernet(path: str | Path | None = None) -> CNNSuperNet:
    """Load and verify the digits CNN SuperNet: ``path`` is the manifest, its ``.npz`` or their
    directory (default: the committed artefact in ``sushi_sched/data``). ``FileNotFoundError`` if a
    file is missing, ``ValueError`` (one line naming the file and the problem) if anything is
    corrupted or inconsistent."""
    mpath = _manifest_path(path)
    if not mpath.is_file():
        raise FileNotFoundError(f"digits CNN SuperNet manifest not found: {mpath}")
    where = str(mpath)
    try:
        manifest = json.loads(mpath.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: manifest is not valid JSON ({e})") from None
    _need(isinstance(manifest, dict), where, "manifest must be a JSON object")
    _need(manifest.get("format") == FORMAT, where, f"format must be {FORMAT!r}")
    _need(
        manifest.get("version") == VERSION,
        where,
        f"unsupported version {manifest.get('version')!r}",
    )
    for key in (
        "spec",
        "weights_file",
        "weights_file_sha256",
        "arrays",
        "quantization",
        "data",
        "subnets",
        "seed",
        "training",
    ):
        _need(key in manifest, where, f"missing key {key!r}")
    try:
        spec = SuperNetSpec.from_dict(manifest["spec"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad spec ({e})") from None

    # ---- the arrays ----
    wname = manifest["weights_file"]
    _need(
        isinstance(wname, str) and Path(wname).name == wname and wname.endswith(".npz"),
        where,
        f"weights_file {wname!r} must be a plain .npz file name",
    )
    npz_path = mpath.parent / wname
    if not npz_path.is_file():
        raise FileNotFoundError(f"{where}: weights file not found: {npz_path}")
    wwhere = str(npz_path)
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile, zlib, numpy format errors: all mean "not what we wrote"
        raise ValueError(
            f"{wwhere}: weights file is corrupted or not an .npz ({type(e).__name__}: {e})"
        ) from None
    expected = manifest["arrays"]
    _need(isinstance(expected, dict), where, "'arrays' must be an object")
    _need(
        set(arrays) == set(expected),
        wwhere,
        f"arrays {sorted(arrays)} do not match the manifest's {sorted(expected)}",
    )
    for name, meta in expected.items():
        a = arrays[name]
        _need(
            isinstance(meta, dict)
            and a.dtype.str == meta.get("dtype")
            and list(a.shape) == meta.get("shape"),
            wwhere,
            f"array {name!r} is {a.dtype.str} {list(a.shape)}, the manifest says otherwise",
        )
        _need(
            sha256_array(a) == meta.get("sha256"),
            wwhere,
            f"array {name!r} does not match its sha256 in the manifest (corrupted or "
            "mismatched weights)",
        )
    _need(
        sha256_file(npz_path) == manifest["weights_file_sha256"],
        wwhere,
        "file sha256 does not match the manifest (corrupted or mismatched weights file)",
    )

    shapes = spec.tensor_shapes()
    want = {f"{p}{n}" for p in ("int8.", "float.") for n in shapes} | set(_SPLITS)
    _need(
        set(arrays) == want,
        wwhere,
        f"arrays do not fit the spec (differ in {sorted(set(arrays) ^ want)})",
    )
    w8, wf = {}, {}
    for name, shape in shapes.items():
        for prefix, dtype, dst in (("int8.", np.int8, w8), ("float.", np.float32, wf)):
            a = arrays[prefix + name]
            _need(
                a.dtype == dtype and a.shape == shape,
                wwhere,
                f"array {prefix + name!r} must be {np.dtype(dtype).name} {list(shape)}",
            )
            dst[name] = a

    # ---- quantisation: the int8 tensors are the float ones quantised with their scales ----
    q = manifest["quantization"]
    try:
        w_scale = {name: float(q["weight_scale"][name]) for name in shapes}
        input_q = int(q["input_q"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad 'quantization' ({e})") from None
    _need(input_q == data.INPUT_Q, where, f"input_q {input_q} != {data.INPUT_Q}")
    for name, s in w_scale.items():
        _need(s > 0 and np.isfinite(s), where, f"weight_scale of {name} = {s} is not positive")
        requant = np.clip(np.rint(wf[name].astype(np.float64) / s), -127, 127).astype(np.int8)
        _need(
            np.array_equal(requant, w8[name]),
            where,
            f"weight_scale {s} of {name!r} does not quantise its float tensor in {wname} to "
            "its int8 tensor (mismatched manifest and weights)",
        )

    # ---- the split ----
    d = manifest["data"]
    idx = {k: arrays[k].astype(np.int64) for k in _SPLITS}
    n_total = d.get("n_total") if isinstance(d, dict) else None
    _need(isinstance(n_total, int) and n_total > 0, where, "data.n_total missing")
    for k in _SPLITS:
        a, n = idx[k], d.get(f"n_{k[:-4]}")
        _need(a.ndim == 1 and a.size == n and a.size > 0, wwhere, f"{k} must hold n = {n} indices")
        _need(
            bool(np.all(np.diff(a) > 0)) and a[0] >= 0 and a[-1] < n_total,
            wwhere,
            f"{k} must be increasing indices into the data set",
        )
    all_idx = np.concatenate([idx[k] for k in _SPLITS])
    _need(np.unique(all_idx).size == all_idx.size, wwhere, "the splits overlap")
    n_val, n_test = idx["val_idx"].size, idx["test_idx"].size

    # ---- SubNets ----
    recs = manifest["subnets"]
    _need(isinstance(recs, list) and recs, where, "'subnets' must be a non-empty list")
    subnets, seen = [], set()
    for j, r in enumerate(recs):
        sw = f"{where}: subnets[{j}]"
        try:
            cfg = spec.check(SubNetConfig.from_json(r["stages"]))
            info = SubNetInfo(
                id=str(r["id"]),
                config=cfg,
                accuracy_val=float(r["accuracy_val"]),
                accuracy_test=float(r["accuracy_test"]),
                accuracy_val_float=float(r["accuracy_val_float"]),
                correct_val=int(r["correct_val"]),
                correct_test=int(r["correct_test"]),
                correct_val_float=int(r["correct_val_float"]),
                macs=int(r["macs"]),
                weight_bytes=int(r["weight_bytes"]),
                params={str(k): tuple(int(x) for x in v) for k, v in r["params"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{sw}: malformed SubNet record ({e})") from None
        _need(info.id == cfg.id, sw, f"id {info.id!r} does not match its config ({cfg.id})")
        _need(cfg not in seen, sw, f"duplicate SubNet {cfg.id}")
        seen.add(cfg)
        _need(info.macs == macs(spec, cfg), sw, f"{cfg.id}: macs {info.macs} are wrong")
        _need(
            info.weight_bytes == weight_bytes(spec, cfg),
            sw,
            f"{cfg.id}: weight_bytes {info.weight_bytes} are wrong",
        )
        for c, acc, n, kind in (
            (info.correct_val, info.accuracy_val, n_val, "val"),
            (info.correct_test, info.accuracy_test, n_test, "test"),
            (info.correct_val_float, info.accuracy_val_float, n_val, "val float"),
        ):
            _need(
                0 <= c <= n and acc == c / n,
                sw,
                f"{cfg.id}: {kind} accuracy {acc} != correct {c} / {n}",
            )
        check_params(spec.plan(cfg), info.params, f"{sw} ({cfg.id})")
        subnets.append(info)
    for what, c in (("largest", spec.largest()), ("smallest", spec.smallest())):
        _need(c in seen, where, f"the {what} SubNet {c.id} is not in the table")

    return CNNSuperNet(
        spec=spec,
        weights_int8=w8,
        weights_float=wf,
        weight_scale=w_scale,
        val_idx=idx["val_idx"],
        test_idx=idx["test_idx"],
        subnets=subnets,
        manifest=manifest,
    )
