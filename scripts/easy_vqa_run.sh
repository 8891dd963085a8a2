#!/usr/bin/env bash
# Train on easy-VQA (scripts/train_easy_vqa.sh), export the weights, assemble the model exactly as default_model.py
# does, and evaluate it on easy-VQA's full test split and on benchmarks/shapes_test (drawn independently); the scores of
# both go into the weights' results.json (the model card's figures). With --baselines also with blank images.
# Usage: scripts/easy_vqa_run.sh IMAGE_MODE WORK_DIR RESULTS_DIR LLM_FOLDER [--baselines]
set -euo pipefail
mode=$1; work=$2; results=$3; llm=$4; baselines=${5:-}
mkdir -p "$results"
start=$(date +%s)
scripts/train_easy_vqa.sh "$mode" "$work" "$llm"
echo "training took $(( $(date +%s) - start )) s"
python default_model.py --export "$work/stage2/final" --weights "$results/weights"
python default_model.py --weights "$results/weights" --output "$work/assembled" --llm_folder "$llm"
eval=(--model "$work/assembled" --batch_size 256 --max_new_tokens 8 --dtype bfloat16)
python eval_vqa.py "${eval[@]}" --data "$work/data/test.json" --output "$work/eval/${mode}_answers.jsonl"
python eval_vqa.py "${eval[@]}" --data benchmarks/shapes_test/test.json --image_folder benchmarks/shapes_test \
    --output "$work/eval/${mode}_shapes_answers.jsonl"
python benchmarks/shapes_report.py --data benchmarks/shapes_test/test.json \
    --answers "$work/eval/${mode}_shapes_answers.jsonl" > "$work/eval/${mode}_shapes_report.md"
python -c 'import json, sys; json.dump({"easy_vqa_test": json.load(open(sys.argv[1])), "shapes_test": json.load(open(sys.argv[2]))},
                                       open(sys.argv[3], "w"), indent=2)' \
    "$work/eval/${mode}_answers_scores.json" "$work/eval/${mode}_shapes_answers_scores.json" "$results/weights/results.json"
if [ "$baselines" = --baselines ]; then
    python eval_vqa.py "${eval[@]}" --data "$work/data/test.json" --blank_media --output "$work/eval/${mode}_blank_answers.jsonl"
fi
cp "$work/stage2/loss_curve.png" "$results/${mode}_stage2_loss.png"
cp "$work/stage1/log_history.json" "$work/eval/${mode}_stage1_log.json"
cp "$work/stage2/log_history.json" "$work/eval/${mode}_stage2_log.json"
tar -czf "$results/${mode}_logs.tar.gz" -C "$work/eval" .
echo "total $(( $(date +%s) - start )) s"
