# Prepared for the next session (not run: no device time left): the server under load (bench_serve.py, continuous
# batching, --max-batch-size 64) with the step attention launch against HEAD b551078's code (.call23/base), whose
# compiled cache writes into continuous batching's shared cache cost 4.35 ms a 64-row step on an H200 (c.sh). The
# served folder's remote code and serve.py's own imports both come from each tree.
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp prepare
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /root/prep.log 2>&1
mkdir -p /root/b7/before && for f in /root/b7/model/*; do ln -sf $f /root/b7/before/; done
for f in .call23/base/*.py; do rm -f /root/b7/before/$(basename $f); cp $f /root/b7/before/; done
serve() {  # serve LABEL SCRIPT FOLDER CLIENTS
  stamp "$1 $4"; timeout 200 python3 benchmarks/bench_serve.py --model $3 --serve_script $2 --label $1 --clients $4 \
    --server_args="--max-batch-size=64" --output $OUT/serve_h200.jsonl > /root/serve.log 2>&1; echo "rc $?"
  grep -E "^\| $1|Error|error" /root/serve.log | head -8
}
serve new serve.py /root/b7/model 1,8,32,64
serve head /tmp/base/serve.py /root/b7/before 1,8,32,64
[ $SECONDS -lt 420 ] && serve new serve.py /root/b7/model 64,64
stamp end
