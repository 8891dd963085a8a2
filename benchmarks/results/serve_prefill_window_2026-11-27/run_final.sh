set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /dev/null 2>&1
for spec in default:1,64,64,64 0:64,64 default:64,64; do
w=${spec%%:*}; clients=${spec#*:}; extra=""; [ $w != default ] && extra="--prefill-window-ms=$w"
echo "=== window $w, clients $clients ($SECONDS s)"
timeout 200 python3 benchmarks/bench_serve.py --model /root/b7/model --label "final-window-$w" --clients $clients --server_args="--max-batch-size=64 $extra" --output $OUT/serve_final.jsonl 2>&1 | grep -E "^\| final|Error|error" | head -6
[ $SECONDS -gt 400 ] && break
done
echo "end $SECONDS"
