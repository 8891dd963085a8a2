set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /dev/null 2>&1
for spec in 100:1,8,64,64 0:8,64,64 150:64,64 100:64,64 0:64,64; do
w=${spec%%:*}; clients=${spec#*:}
echo "=== window $w scaled, clients $clients ($SECONDS s)"
timeout 200 python3 benchmarks/bench_serve.py --model /root/b7/model --label "scaled-window-${w}ms" --clients $clients --server_args="--max-batch-size=64 --prefill-window-ms=$w" --output $OUT/serve_scaled_window.jsonl 2>&1 | grep -E "^\| scaled|Error|error" | head -6
[ $SECONDS -gt 450 ] && break
done
echo "end $SECONDS"
