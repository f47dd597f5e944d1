"""Save and load the digits SuperNet artefact, with integrity checks.

Two files side by side: ``digits_supernet.json`` (the manifest: seed, training settings, SubNet
space, quantisation, per-SubNet requantisation and measured accuracies, and the sha256 of every
array and of the weights file) and ``digits_supernet.npz`` (the arrays). Both are written
byte-for-byte deterministically (fixed zip timestamps, fixed key order), so the same seed gives
the same bytes. :func:`load_digits_supernet` re-checks everything it can without re-training and
raises ``ValueError`` naming the problem; it never returns a partly valid model.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from sushi_hw.reference import check_requant

from . import data
from .model import SubNetConfig, SuperNetSpec, macs, weight_bytes
from .quant import check_constant_unit
from .supernet import DigitsSuperNet, SubNetInfo

FORMAT = "sushi-digits-supernet"
VERSION = 1
MANIFEST_NAME = "digits_supernet.json"
WEIGHTS_NAME = "digits_supernet.npz"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def sha256_array(a: np.ndarray) -> str:
    """sha256 of an array's C-order bytes (dtype and shape are checked separately)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``np.load``-able .npz whose bytes depend only on the arrays (no timestamps)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def dump_manifest(manifest: dict) -> str:
    """Indented JSON with one line per SubNet (keeps the file small and diffable)."""
    subnets = manifest.get("subnets", [])
    tmp = dict(manifest)
    tmp["subnets"] = [f"@@SUBNET{i}@@" for i in range(len(subnets))]
    text = json.dumps(tmp, indent=2)
    for i, s in enumerate(subnets):
        text = text.replace(f'"@@SUBNET{i}@@"', json.dumps(s), 1)
    return text + "\n"


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
    if p.suffix == ".npz":
        return p.with_suffix(".json")
    return p


def load_digits_supernet(path: str | Path | None = None) -> DigitsSuperNet:
    """Load and verify the digits SuperNet.

    ``path`` is the manifest (``.json``), its ``.npz``, or their directory; default: the
    committed artefact in ``sushi_sched/data``. Raises ``FileNotFoundError`` if a file is missing
    and ``ValueError`` naming the problem if anything is corrupted or inconsistent.
    """
    mpath = _manifest_path(path)
    if not mpath.is_file():
        raise FileNotFoundError(f"digits SuperNet manifest not found: {mpath}")
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
        sd = manifest["spec"]
        spec = SuperNetSpec(
            inputs=tuple(sd["inputs"]),
            depths=tuple(sd["depths"]),
            widths=tuple(sd["widths"]),
            n_out=int(sd["n_out"]),
        )
    except (KeyError, TypeError) as e:
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
            a.dtype.str == meta.get("dtype"),
            wwhere,
            f"array {name!r} has dtype {a.dtype.str}, manifest says {meta.get('dtype')}",
        )
        _need(
            list(a.shape) == meta.get("shape"),
            wwhere,
            f"array {name!r} has shape {list(a.shape)}, manifest says {meta.get('shape')}",
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
    w8, wf = {}, {}
    for name, shape in shapes.items():
        for prefix, dtype, dst in (("int8.", np.int8, w8), ("float.", np.float32, wf)):
            key = prefix + name
            _need(key in arrays, wwhere, f"missing array {key!r}")
            _need(
                arrays[key].dtype == dtype and arrays[key].shape == shape,
                wwhere,
                f"array {key!r} must be {np.dtype(dtype).name} {list(shape)} for this spec",
            )
            dst[name] = arrays[key]
    _need(
        set(arrays)
        == {f"{p}{n}" for p in ("int8.", "float.") for n in shapes} | {"pixel_order", "test_idx"},
        wwhere,
        "unexpected arrays for this spec",
    )

    # ---- quantisation ----
    q = manifest["quantization"]
    try:
        inv = {name: int(q["weight_inv_scale"][name]) for name in shapes}
        input_q = int(q["input_q"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad 'quantization' ({e})") from None
    _need(input_q == data.INPUT_Q, where, f"input_q {input_q} != {data.INPUT_Q}")
    for name, v in inv.items():
        _need(1 <= v <= 127, where, f"weight_inv_scale of {name} = {v} out of 1..127")
        if name != "head":  # the constant unit: column 0 = V * e_0
            col = w8[name][:, 0].astype(np.int64)
            _need(
                col[0] == v and not col[1:].any(),
                wwhere,
                f"tensor {name}: column 0 must be the constant unit ({v}, 0, ..., 0)",
            )

    # ---- data split and input order ----
    try:
        order = data.check_order(arrays["pixel_order"])
    except ValueError as e:
        raise ValueError(f"{wwhere}: {e}") from None
    test_idx = arrays["test_idx"].astype(np.int64)
    d = manifest["data"]
    n_test = d.get("n_test")
    _need(
        test_idx.ndim == 1 and test_idx.size == n_test and test_idx.size > 0,
        wwhere,
        f"test_idx must hold n_test = {n_test} indices",
    )
    _need(
        bool(np.all(np.diff(test_idx) > 0))
        and test_idx[0] >= 0
        and test_idx[-1] < d.get("n_total", 0),
        wwhere,
        "test_idx must be increasing indices into the data set",
    )
    _need(d.get("pixel_order") == order.tolist(), where, "pixel_order differs from the npz")

    # ---- SubNets ----
    subnets = []
    recs = manifest["subnets"]
    _need(isinstance(recs, list), where, "'subnets' must be a list")
    seen = set()
    for j, r in enumerate(recs):
        sw = f"{where}: subnets[{j}]"
        try:
            cfg = spec.check(SubNetConfig(int(r["inputs"]), tuple(int(w) for w in r["widths"])))
            info = SubNetInfo(
                id=str(r["id"]),
                config=cfg,
                accuracy_int8=float(r["accuracy_int8"]),
                accuracy_float=float(r["accuracy_float"]),
                macs=int(r["macs"]),
                weight_bytes=int(r["weight_bytes"]),
                correct_int8=int(r["correct_int8"]),
                correct_float=int(r["correct_float"]),
                act_q=tuple(int(x) for x in r["act_q"]),
                requant=tuple((int(m), int(s)) for m, s in r["requant"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{sw}: malformed SubNet record ({e})") from None
        _need(info.id == cfg.id, sw, f"id {info.id!r} does not match its config ({cfg.id})")
        _need(cfg not in seen, sw, f"duplicate SubNet {cfg.id}")
        seen.add(cfg)
        _need(info.macs == macs(spec, cfg), sw, f"{cfg.id}: macs {info.macs} != {macs(spec, cfg)}")
        _need(
            info.weight_bytes == weight_bytes(spec, cfg),
            sw,
            f"{cfg.id}: weight_bytes {info.weight_bytes} != {weight_bytes(spec, cfg)}",
        )
        for c, acc, kind in (
            (info.correct_int8, info.accuracy_int8, "int8"),
            (info.correct_float, info.accuracy_float, "float"),
        ):
            _need(
                0 <= c <= n_test and acc == c / n_test,
                sw,
                f"{cfg.id}: {kind} accuracy {acc} != correct {c} / {n_test}",
            )
        _need(
            len(info.act_q) == cfg.depth + 1
            and info.act_q[0] == input_q
            and all(1 <= x <= 127 for x in info.act_q),
            sw,
            f"{cfg.id}: bad act_q {info.act_q}",
        )
        _need(len(info.requant) == cfg.depth, sw, f"{cfg.id}: needs {cfg.depth} requant pairs")
        for i, (mult, shift) in enumerate(info.requant):
            layer = f"fc{i + 1}"
            try:
                check_requant(mult, shift)
                check_constant_unit(
                    cfg.id, layer, info.act_q[i], inv[layer], info.act_q[i + 1], mult, shift
                )
            except ValueError as e:
                raise ValueError(f"{sw}: {e}") from None
        subnets.append(info)
    missing = set(spec.subnets()) - seen
    _need(
        not missing,
        where,
        f"{len(missing)} SubNets of the space are missing, e.g. "
        f"{sorted(missing)[0].id if missing else ''}",
    )

    return DigitsSuperNet(
        spec=spec,
        weights_int8=w8,
        weights_float=wf,
        inv_scale=inv,
        pixel_order=order,
        test_idx=test_idx,
        subnets=subnets,
        manifest=manifest,
    )
