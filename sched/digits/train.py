"""Train, quantise, measure and save the digits SuperNet.

    python -m sushi_sched.digits.train --seed 0 --out sched/data
    python -m sushi_sched.digits.train --seed 0 --out /tmp/x --tiny     # 2 epochs, for tests

Deterministic: the same seed and settings give byte-identical files (on the same numpy/BLAS).
Prints the training time and a per-SubNet table; the manifest holds no timings.
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
from .supernet import DigitsSuperNet, SubNetInfo, make_layers

TINY_EPOCHS = 2


def build(settings: model.TrainSettings, log=print) -> tuple[dict, dict, DigitsSuperNet, float]:
    """Everything but the files: ``(arrays, manifest, supernet, train_seconds)``."""
    spec = settings.spec
    images, labels = data.load_raw()
    split = data.make_split(labels, settings.seed, settings.test_fraction)
    order = data.pixel_order(images[split.train])
    t0 = time.perf_counter()
    params = model.train(settings, images[split.train], labels[split.train], order, log=log)
    train_s = time.perf_counter() - t0
    w8, inv = quant.quantize_weights(params)

    x_cal = data.float_features(images[split.train], order)
    test_imgs, y_test = images[split.test], labels[split.test]
    x_test8 = data.quantize_input(test_imgs, order)
    params64 = {k: v.astype(np.float64) for k, v in params.items()}
    x_testf = data.float_features(test_imgs, order)
    infos = []
    for cfg in spec.subnets():
        act_q = quant.calibrate(spec, params, cfg, x_cal)
        sq = quant.subnet_quant(spec, cfg, act_q, inv)
        logits8 = _int8_logits(spec, w8, cfg, sq, x_test8)
        c8 = int(np.sum(np.argmax(logits8, 1) == y_test))
        cf = int(np.sum(np.argmax(model.float_forward(spec, params64, cfg, x_testf), 1) == y_test))
        infos.append(
            SubNetInfo(
                id=cfg.id,
                config=cfg,
                accuracy_int8=c8 / y_test.size,
                accuracy_float=cf / y_test.size,
                macs=model.macs(spec, cfg),
                weight_bytes=model.weight_bytes(spec, cfg),
                correct_int8=c8,
                correct_float=cf,
                act_q=sq.act_q,
                requant=sq.requant,
            )
        )

    arrays = {f"int8.{k}": v for k, v in w8.items()}
    arrays.update({f"float.{k}": v for k, v in params.items()})
    arrays["pixel_order"] = order.astype(np.int64)
    arrays["test_idx"] = split.test.astype(np.int64)
    import sklearn

    manifest = {
        "format": store.FORMAT,
        "version": store.VERSION,
        "description": (
            "Weight-shared elastic MLP on sklearn digits, int8 for SushiAccel. SubNet = "
            "(inputs, widths): first `inputs` features (constant + most variable pixels), "
            "len(widths) hidden layers fc1..fcd of those widths, then the shared head. Layer l "
            "uses the leading slice fc_l[:k, :w_l]. Hidden layers: int8 GEMM, requant "
            "(mult, shift) + ReLU -> int8, whose [M, N] output is the next layer's A [M, K]. "
            "Head: int8 GEMM, int32 logits (no requant); class = argmax (ties -> lowest). "
            "Biases are row 0 of each tensor, fed by a constant unit 0 in every layer."
        ),
        "seed": settings.seed,
        "training": {
            **{k: v for k, v in settings.to_dict().items() if k not in ("spec", "seed")},
            "method": "sandwich rule (largest + smallest + n_random random SubNets per step), "
            "in-place distillation from the largest, Adam, cosine lr, float64 numpy",
        },
        "spec": spec.to_dict(),
        "data": {
            "source": "sklearn.datasets.load_digits",
            "n_total": int(labels.size),
            "n_train": int(split.train.size),
            "n_test": int(split.test.size),
            "split": "stratified per class, seeded (data.make_split); test_idx in the npz",
            "input_q": data.INPUT_Q,
            "pixel_order": order.tolist(),
        },
        "quantization": {
            "weights": "per tensor, shared by all SubNets: Wq = clip(rint(W * V), -127, 127)",
            "activations": "per SubNet and layer: scale 1/Q, Q = floor(127 / max(1, max act on "
            "the training split)); input Q = input_q",
            "input_q": data.INPUT_Q,
            "weight_inv_scale": inv,
        },
        "tensors": {k: list(v) for k, v in spec.tensor_shapes().items()},
        "versions": {
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
        "subnets": [
            {
                "id": s.id,
                "inputs": s.config.inputs,
                "widths": list(s.config.widths),
                "macs": s.macs,
                "weight_bytes": s.weight_bytes,
                "accuracy_float": s.accuracy_float,
                "accuracy_int8": s.accuracy_int8,
                "correct_float": s.correct_float,
                "correct_int8": s.correct_int8,
                "act_q": list(s.act_q),
                "requant": [list(r) for r in s.requant],
            }
            for s in infos
        ],
    }
    net = DigitsSuperNet(
        spec=spec,
        weights_int8=w8,
        weights_float=params,
        inv_scale=inv,
        pixel_order=order,
        test_idx=split.test,
        subnets=infos,
        manifest=manifest,
    )
    return arrays, manifest, net, train_s


def _int8_logits(spec, w8, cfg, sq, x):
    from .reference import int8_forward

    return int8_forward(make_layers(spec, w8, cfg, sq.act_q, sq.requant, x.shape[0]), x)


def format_table(net: DigitsSuperNet) -> str:
    rows = [f"{'id':<22} {'float':>6} {'int8':>6} {'MACs':>6} {'bytes':>6}"]
    for s in sorted(net.subnets(), key=lambda s: (s.macs, s.id)):
        rows.append(
            f"{s.id:<22} {s.accuracy_float:6.4f} {s.accuracy_int8:6.4f} "
            f"{s.macs:6d} {s.weight_bytes:6d}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sushi_sched.digits.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, type=Path, help="directory for the two files")
    ap.add_argument("--tiny", action="store_true", help=f"{TINY_EPOCHS} epochs (fast tests)")
    ap.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    ap.add_argument("--table", action="store_true", help="print every SubNet")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    settings = model.TrainSettings(seed=args.seed)
    if args.tiny:
        settings = dataclasses.replace(settings, epochs=TINY_EPOCHS)
    if args.epochs is not None:
        if args.epochs < 1:
            ap.error("--epochs must be >= 1")
        settings = dataclasses.replace(settings, epochs=args.epochs)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    t0 = time.perf_counter()
    arrays, manifest, net, train_s = build(settings, log=log)
    json_path, npz_path = store.save(args.out, arrays, manifest)
    total_s = time.perf_counter() - t0
    store.load_digits_supernet(json_path)  # round trip through the integrity checks
    if args.table:
        print(format_table(net))
    big, small = net.largest(), net.smallest()
    a8 = [s.accuracy_int8 for s in net.subnets()]
    print(
        f"trained {settings.epochs} epochs in {train_s:.1f} s (total with quantisation and "
        f"evaluation {total_s:.1f} s); {len(a8)} SubNets"
    )
    print(
        f"largest {big.id}: float {big.accuracy_float:.4f} int8 {big.accuracy_int8:.4f} "
        f"MACs {big.macs}; smallest {small.id}: float {small.accuracy_float:.4f} "
        f"int8 {small.accuracy_int8:.4f} MACs {small.macs}"
    )
    print(
        f"int8 accuracy over SubNets: min {min(a8):.4f} median {float(np.median(a8)):.4f} "
        f"max {max(a8):.4f}"
    )
    print(
        f"wrote {json_path} ({json_path.stat().st_size} B), {npz_path} "
        f"({npz_path.stat().st_size} B)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
