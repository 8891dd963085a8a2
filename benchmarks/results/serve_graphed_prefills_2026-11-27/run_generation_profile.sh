# Where the generation thread's time goes at 64 clients (GET /metrics through bench_serve.py), graphed prefills.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /root/prep.log 2>&1
timeout 150 python3 benchmarks/bench_serve.py --model /root/b7/model --label graphed --clients 64,64 --server_args="--max-batch-size=64" --output $OUT/serve_profile.jsonl > /root/serve.log 2>&1; echo "rc $?"; grep -E "^\||Error|error" /root/serve.log | head -12
