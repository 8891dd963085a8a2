source ../quantized_decoding_2026-11-27b/common.sh  # wheels and environment
stamp prepare
timeout 240 python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 256 > /root/prep.log 2>&1; echo "rc $?"
LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
FLAGS="--stage 2 --model_name_or_path /root/b7/model --data_path /root/b7/data.json --image_folder /root/b7 --output_dir /root/prof --bf16 --model_dtype bfloat16 --per_device_train_batch_size 8 --gradient_accumulation_steps 4 --max_steps 6 --save_strategy no --save_final false --report_to none --model_max_length 1024 --learning_rate 1e-4 $LORA"
stamp profile default
timeout 150 python3 benchmarks/profile_train.py --warmup_steps 3 --steps 2 -- $FLAGS 2>&1 | grep -E "^rank|per optimizer step|^  [a-zA-Z]" | head -14 | tee $OUT/profile_1gpu.txt
stamp profile filter on
timeout 120 python3 benchmarks/profile_train.py --warmup_steps 3 --steps 2 -- $FLAGS --logging_nan_inf_filter true 2>&1 | grep -E "^rank" | tee -a $OUT/profile_1gpu.txt
stamp ab
timeout 250 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --gpus 1 --global_batch 32 --steps 14 --warmup_steps 4 --variant "filter_on:8:--logging_nan_inf_filter true" --variant "filter_off:8" --variant "filter_on_2:8:--logging_nan_inf_filter true" --variant "filter_off_2:8" --train_args "$LORA" --output $OUT/ab.jsonl > /root/ab.log 2>&1; echo "rc $?"; grep -E "^\|" /root/ab.log
stamp end
