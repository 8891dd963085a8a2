set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True PYTHONUNBUFFERED=1
stamp() { echo "=== $(date +%T) $* ($SECONDS s)"; }
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /dev/null 2>&1
for round in 1 2; do
for w in 0 25 50; do
stamp window $w ms round $round
clients=64,64; [ $round = 2 ] && [ $w = 25 ] && clients=1,64,64
timeout 200 python3 benchmarks/bench_serve.py --model /root/b7/model --label "window-${w}ms" --clients $clients --server_args="--max-batch-size=64 --prefill-window-ms=$w" --output $OUT/serve_prefill_window.jsonl 2>&1 | grep -E "^\| window|Error|error" | head -6
[ $SECONDS -gt 520 ] && break 2
done
done
stamp end
