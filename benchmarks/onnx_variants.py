"""What else ONNX Runtime offers for CPU prediction: graph fusions and 4/8-bit weight-only kernels.

Loads a saved ``TransformerClassifier`` (``--model``, e.g. one of ``inference.py --models``), exports
its encoder to ONNX twice (torch's SDPA attention, the library's ``quantize="onnx-int8"`` path; and
eager attention, whose pattern ONNX Runtime's BERT optimiser fuses into ``Attention`` and
``EmbedLayerNormalization``), and times, alternating within each repeat on the same length-sorted
batches of the test split: torch float32, torch dynamic int8 (the library's ``quantize="int8"``),
ONNX Runtime int8 (per-channel ``quantize_dynamic``) on the plain graph (the library's
``quantize="onnx-int8"`` itself) and on the fused graph, the fused graph in float32, and
``MatMulNBits`` 4-bit weights (block 32, int8 compute) where ``onnx_ir`` is installed. Reports
texts/s, the speed-up over torch float32, agreement of the predicted labels with float32 and
macro-F1 (the model's own head on each variant's features).

    python benchmarks/onnx_variants.py --model /path/to/saved/model --threads 2 --repeats 3 \\
        --out benchmarks/results/onnx_variants.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _common import load_subsampled, markdown_table, publish


def _export(encoder, path, attention):
    """The library's export (``quantize="onnx-int8"``'s), with the backbone's attention set to ``attention``."""
    from skimb.backbones._onnx import _export as export

    config = encoder.backbone.config
    previous, config._attn_implementation = config._attn_implementation, attention
    try:
        export(encoder, path)
    finally:
        config._attn_implementation = previous


def _onnx_variants(encoder, tmp, hidden_size, n_heads):
    """name -> ONNX file, and the fused operators of the optimised graph."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    files = {}
    plain, eager = tmp / "sdpa.onnx", tmp / "eager.onnx"
    _export(encoder, plain, "sdpa")
    _export(encoder, eager, "eager")
    fused = optimizer.optimize_model(str(eager), model_type="bert", num_heads=n_heads, hidden_size=hidden_size,
                                     opt_level=1)
    stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    fused_path = tmp / "fused.onnx"
    fused.save_model_to_file(str(fused_path))
    files["onnx fused float32"] = fused_path
    fused_int8 = tmp / "fused.int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the fused operators hide their outputs' types from shape inference: say they are float
        quantize_dynamic(str(fused_path), str(fused_int8), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    files["onnx fused int8"] = fused_int8
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    except ImportError as exc:  # onnx_ir missing
        print(f"MatMulNBits skipped: {exc}")
    else:
        quantizer = MatMulNBitsQuantizer(onnx.load(str(plain)), algo_config=DefaultWeightOnlyQuantConfig(
            block_size=32, is_symmetric=True, accuracy_level=4, bits=4))
        quantizer.process()
        dst = tmp / "nbits4.onnx"
        quantizer.model.save_model_to_file(str(dst), True)
        files["onnx 4-bit weights (MatMulNBits)"] = dst
    return files, stats


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="folder of a saved TransformerClassifier")
    p.add_argument("--dataset", default="cyclone_idai_2019")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/onnx_variants.json")
    args = p.parse_args(argv)

    import onnxruntime as ort
    import torch
    from sklearn.metrics import f1_score

    from skimb import TransformerClassifier
    from skimb.backbones._onnx import onnx_int8_module
    from skimb.backbones._quantize import int8_module

    torch.set_num_threads(args.threads)
    data = load_subsampled(args.dataset)
    clf = TransformerClassifier.load_pretrained(args.model, device="cpu")
    module = clf.net_.module_.eval()
    texts = list(data.X_test)
    order = np.argsort([len(t) for t in texts], kind="stable")
    batches = []
    for start in range(0, len(texts), args.batch_size):
        enc = clf.tokenizer_([texts[i] for i in order[start:start + args.batch_size]], padding=True, truncation=True,
                             max_length=clf.max_length, return_tensors="pt")
        batches.append((enc["input_ids"], enc["attention_mask"]))
    config = module.encoder.backbone.config
    tmp = Path(tempfile.mkdtemp(prefix="skimb-onnx-variants-"))
    files, fused_ops = _onnx_variants(module.encoder, tmp, config.hidden_size, config.num_attention_heads)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    sessions = {name: ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"])
                for name, f in files.items()}
    int8 = int8_module(module).encoder
    onnx_int8 = onnx_int8_module(module, args.threads).encoder  # the library's ONNX Runtime path

    def run_torch(encoder):
        with torch.inference_mode():
            return torch.cat([encoder(i, m) for i, m in batches])

    def run_onnx(session):
        return torch.cat([torch.from_numpy(session.run(None, {"input_ids": i.numpy(), "attention_mask": m.numpy()})[0])
                          for i, m in batches])

    variants = {"torch float32": lambda: run_torch(module.encoder), "torch int8 (quantize='int8')":
                lambda: run_torch(int8), "onnx int8 (quantize='onnx-int8')": lambda: run_torch(onnx_int8),
                **{name: (lambda s=s: run_onnx(s)) for name, s in sessions.items()}}
    for name, run in variants.items():  # warm-up: first-call allocations and kernel selection
        run()
    times = {name: [] for name in variants}
    features = {}
    for repeat in range(args.repeats):
        names = list(variants) if repeat % 2 == 0 else list(variants)[::-1]
        for name in names:
            t0 = time.perf_counter()
            features[name] = variants[name]()
            times[name].append(time.perf_counter() - t0)
    y_true = np.asarray(data.y_test)[order]
    with torch.inference_mode():
        labels = {name: clf.classes_[module.head(f).argmax(1).numpy()] for name, f in features.items()}
    base = float(np.median(times["torch float32"]))
    runs = []
    for name in variants:
        sec = float(np.median(times[name]))
        runs.append({"variant": name, "texts_per_s": len(texts) / sec, "speedup": base / sec,
                     "agreement": float(np.mean(labels[name] == labels["torch float32"])),
                     "macro_f1": float(f1_score(y_true, labels[name], average="macro"))})
    rows = [[r["variant"], f"{r['texts_per_s']:.1f}", f"{r['speedup']:.2f}x", f"{100 * r['agreement']:.1f}%",
             f"{r['macro_f1']:.4f}"] for r in runs]
    body = (f"{len(texts)} test texts of {args.dataset}, batch {args.batch_size}, {args.threads} threads, median of "
            f"{args.repeats} alternating repeats; fused operators of the optimised graph: {fused_ops}\n\n"
            + markdown_table(["prediction", "texts/s", "vs torch float32", "same label", "macro-F1"], rows))
    publish("benchmarks/onnx_variants.py", argv, args.out, "ONNX Runtime variants for CPU prediction", body, runs)


if __name__ == "__main__":
    main()
