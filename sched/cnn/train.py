"""Train, quantise, measure and save the digits CNN SuperNet.

    python -m sushi_sched.cnn.train --seed 0 --out sched/data
    python -m sushi_sched.cnn.train --seed 0 --out /tmp/x --tiny     # 1 epoch, 12 SubNets (tests)

Deterministic: the same seed and settings give byte-identical files (on the same numpy/BLAS;
BLAS runs on one thread). Prints the training time and the accuracy summary; the manifest holds
no timings.

The accuracy table: the largest and the smallest SubNet and ``--subnets - 2`` more drawn from the
space by a generator seeded from the seed, each calibrated on the training split and measured in
int8 on the validation split (what the scheduler chooses with) and on the test split (reported
only: the demo's queries come from it).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import data, model, quant, store
from .reference import int8_forward
from .supernet import CNNSuperNet, SubNetInfo

TINY_EPOCHS = 1
TINY_SUBNETS = 12
N_SUBNETS = 120


def table_configs(spec: model.SuperNetSpec, seed: int, n: int) -> list[model.SubNetConfig]:
    """The largest, the smallest, then distinct random SubNets (seeded) up to ``n``."""
    if n < 2:
        raise ValueError(f"the table needs at least 2 SubNets, got {n}")
    n = min(n, spec.size())
    rng = np.random.default_rng([int(seed), 0x7AB1E])
    out = [spec.largest(), spec.smallest()]
    seen = set(out)
    while len(out) < n:
        c = spec.sample(rng)
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def build(
    settings: model.TrainSettings, n_subnets: int = N_SUBNETS, log=print
) -> tuple[dict, dict, CNNSuperNet, float]:  # noqa: ANN001
    """Everything but the files: ``(arrays, manifest, supernet, train_seconds)``."""
    from threadpoolctl import threadpool_limits

    spec = settings.spec
    images, labels = data.load_raw()
    split = data.make_split(labels, settings.seed, settings.val_fraction, settings.test_fraction)
    t0 = time.perf_counter()
    params = model.train(settings, images[split.train], labels[split.train], log=log)
    train_s = time.perf_counter() - t0
    w8, w_scale = quant.quantize_weights(params)

    x_cal = data.float_images(images[split.train]).astype(np.float32)
    sets = {
        s: (
            data.quantize_images(images[idx]),
            data.float_images(images[idx]).astype(np.float32),
            labels[idx],
        )
        for s, idx in (("val", split.val), ("test", split.test))
    }
    infos = []
    with threadpool_limits(limits=1):
        for cfg in table_configs(spec, settings.seed, n_subnets):
            ops = spec.plan(cfg)
            amax = quant.calibrate(spec, params, cfg, x_cal)
            qp = quant.subnet_params(spec, cfg, amax, w_scale)
            correct = {}
            for s, (x8, _, y) in sets.items():
                correct[s] = int(np.sum(np.argmax(int8_forward(spec, w8, ops, qp, x8), 1) == y))
            xf, yv = sets["val"][1:]
            cf = int(np.sum(np.argmax(model.forward(spec, params, cfg, xf), 1) == yv))
            nv, nt = split.val.size, split.test.size
            infos.append(
                SubNetInfo(
                    id=cfg.id,
                    config=cfg,
                    accuracy_val=correct["val"] / nv,
                    accuracy_test=correct["test"] / nt,
                    accuracy_val_float=cf / nv,
                    correct_val=correct["val"],
                    correct_test=correct["test"],
                    correct_val_float=cf,
                    macs=model.macs(spec, cfg),
                    weight_bytes=model.weight_bytes(spec, cfg),
                    params=qp,
                )
            )

    arrays = {f"int8.{k}": v for k, v in w8.items()}
    arrays.update({f"float.{k}": v for k, v in params.items()})
    arrays.update({"train_idx": split.train, "val_idx": split.val, "test_idx": split.test})
    import sklearn

    manifest = {
        "format": store.FORMAT,
        "version": store.VERSION,
        "description": (
            "OFA-ResNet-style weight-shared CNN on sklearn digits (8x8x1), int8 for SushiAccel: "
            "stem conv, stages of basic residual blocks (8x8 -> 4x4 -> 2x2; stride-2 first "
            "blocks with 1x1 projection shortcuts), global average pooling, FC classifier. "
            "SubNet = per stage its leading blocks, each with an inner width mid (leading output "
            "channels of c1 / input channels of c2) and a kernel k (centre crop of c1 and c2). "
            "No bias and no BatchNorm anywhere. CONV: requantize(acc, mult, shift, relu); ADD: "
            "sat8(relu((a*mult_a + b*mult_b + round) >> shift)), a = branch, b = shortcut; POOL: "
            "global mean with (mult, shift); FC: int32 logits, class = argmax (ties -> lowest)."
        ),
        "seed": settings.seed,
        "training": {
            **{k: v for k, v in settings.to_dict().items() if k not in ("spec", "seed")},
            "method": "sandwich rule (largest + smallest + n_random random SubNets per step), "
            "in-place distillation from the largest, Adam, cosine lr, +-shift pixel random "
            "shifts, float32 numpy on one BLAS thread",
        },
        "spec": spec.to_dict(),
        "data": {
            "source": "sklearn.datasets.load_digits",
            "n_total": int(labels.size),
            "n_train": int(split.train.size),
            "n_val": int(split.val.size),
            "n_test": int(split.test.size),
            "split": "stratified per class, seeded (cnn.data.make_split); indices in the npz. "
            "train: weights and activation calibration; val: the accuracy table (SubNet "
            "selection); test: the demo's queries, reported only",
            "input_q": data.INPUT_Q,
        },
        "quantization": {
            "weights": "per tensor, shared by all SubNets: Wq = clip(rint(W / s), -127, 127), "
            "s = max|W| / 127",
            "activations": "per SubNet and value: s = max|x| / 127 on the training split; "
            "input s = 1 / input_q",
            "input_q": data.INPUT_Q,
            "weight_scale": w_scale,
        },
        "tensors": {k: list(v) for k, v in spec.tensor_shapes().items()},
        "versions": {
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
        "subnets": [store.subnet_record(s) for s in infos],
    }
    net = CNNSuperNet(
        spec=spec,
        weights_int8=w8,
        weights_float=params,
        weight_scale=w_scale,
        val_idx=split.val,
        test_idx=split.test,
        subnets=infos,
        manifest=manifest,
    )
    return arrays, manifest, net, train_s


def summary(net: CNNSuperNet) -> list[str]:
    lines = []
    for what, key in (
        ("val", "accuracy_val"),
        ("test", "accuracy_test"),
        ("val float", "accuracy_val_float"),
    ):
        a = [getattr(s, key) for s in net.subnets()]
        lines.append(
            f"{what:>9}: min {min(a):.4f} median {float(np.median(a)):.4f} "
            f"max {max(a):.4f} (span {100 * (max(a) - min(a)):.1f} points)"
        )
    return lines


def format_table(net: CNNSuperNet) -> str:
    rows = [f"{'id':<34} {'val':>6} {'test':>6} {'float':>6} {'MACs':>8} {'bytes':>6}"]
    for s in sorted(net.subnets(), key=lambda s: (s.macs, s.id)):
        rows.append(
            f"{s.id:<34} {s.accuracy_val:6.4f} {s.accuracy_test:6.4f} "
            f"{s.accuracy_val_float:6.4f} {s.macs:8d} {s.weight_bytes:6d}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sushi_sched.cnn.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, type=Path, help="directory for the two files")
    ap.add_argument(
        "--tiny",
        action="store_true",
        help=f"{TINY_EPOCHS} epoch, {TINY_SUBNETS} SubNets (fast tests)",
    )
    ap.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    ap.add_argument("--subnets", type=int, default=None, help=f"table size (default {N_SUBNETS})")
    ap.add_argument("--table", action="store_true", help="print every SubNet")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    settings, n = model.TrainSettings(seed=args.seed), N_SUBNETS
    if args.tiny:
        settings, n = dataclasses.replace(settings, epochs=TINY_EPOCHS), TINY_SUBNETS
    if args.epochs is not None:
        if args.epochs < 1:
            ap.error("--epochs must be >= 1")
        settings = dataclasses.replace(settings, epochs=args.epochs)
    if args.subnets is not None:
        if args.subnets < 2:
            ap.error("--subnets must be >= 2")
        n = args.subnets

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    t0 = time.perf_counter()
    arrays, manifest, net, train_s = build(settings, n, log=log)
    json_path, npz_path = store.save(args.out, arrays, manifest)
    total_s = time.perf_counter() - t0
    store.load_cnn_supernet(json_path)  # round trip through the integrity checks
    if args.quiet:
        return 0
    if args.table:
        print(format_table(net))
    big, small = net.largest(), net.smallest()
    print(
        f"trained {settings.epochs} epochs in {train_s:.1f} s (total with quantisation and "
        f"measurement {total_s:.1f} s); {len(net.subnets())} SubNets"
    )
    for s, what in ((big, "largest"), (small, "smallest")):
        print(
            f"{what} {s.id}: val int8 {s.accuracy_val:.4f} (float {s.accuracy_val_float:.4f}) "
            f"test int8 {s.accuracy_test:.4f}; {s.macs} MACs, {s.weight_bytes} B"
        )
    print("\n".join(summary(net)))
    print(
        f"wrote {json_path} ({json_path.stat().st_size} B), {npz_path} "
        f"({npz_path.stat().st_size} B)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
