#!/usr/bin/env bash
# Device check on a machine with CUDA, in one call: the README main job timed on the GPU, the whole
# test suite with CUDA visible (estimators default to device="auto", so every fit in it runs on the
# GPU), then the main job's seeds 1 and 2 for a mean over three seeds, each stage bounded so that the
# whole check ends inside BUDGET_S. Everything it writes lands in OUTDIR (at most eight files).
#
# Usage: bash benchmarks/gpu_check.sh OUTDIR [BUDGET_S]   (PYTHON: the interpreter with skimb, default python3)
set -u
out=${1:?usage: gpu_check.sh OUTDIR [BUDGET_S]}
budget=${2:-540}
py=${PYTHON:-python3}
mkdir -p "$out"
work=$(mktemp -d)
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
t0=$(date +%s)
left() { local l=$(( budget - ($(date +%s) - t0) - ${1:-0} )); echo $(( l > 10 ? l : 10 )); }
stage() {  # name, cap_s, reserve_s, command...
    local name=$1 cap=$2 reserve=$3; shift 3
    local limit; limit=$(left "$reserve"); (( limit > cap )) && limit=$cap
    local s; s=$(date +%s)
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    echo "$name rc=$? wall_s=$(( $(date +%s) - s )) limit_s=$limit" | tee -a "$out/summary.txt"
}
{ nvidia-smi; lscpu | grep -E "Model name|^CPU\(s\)"; "$py" - <<'PY'
import importlib, platform
print("python", platform.python_version())
for name in ("torch", "transformers", "peft", "sklearn", "skorch", "imblearn", "numpy", "faiss"):
    try:
        mod = importlib.import_module(name)
        print(name, getattr(mod, "__version__", "?"))
    except ImportError as exc:
        print(name, "missing:", exc)
import torch
print("cuda", torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
} > "$out/machine.txt" 2>&1

# 1. the README main job (default dataset, methods and seed), alone on the GPU so its time is its own
stage compare_seed0 300 200 "$py" -m skimb compare --no-progress --device cuda --out "$work/compare"
# 2. the test suite, with CUDA visible
stage pytest 300 60 "$py" -m pytest -q -p no:cacheprovider -n "${PYTEST_WORKERS:-8}"
# 3. seeds 1 and 2 of the main job (seed 0 resumed from its journal)
stage compare_seeds012 300 5 "$py" -m skimb compare --no-progress --device cuda --seeds 0,1,2 --resume --out "$work/compare"
cp "$work/compare/report.md" "$out/report.md" 2>/dev/null
cp "$work/compare/runs.jsonl" "$out/runs.jsonl" 2>/dev/null
echo "total_s=$(( $(date +%s) - t0 ))" >> "$out/summary.txt"
