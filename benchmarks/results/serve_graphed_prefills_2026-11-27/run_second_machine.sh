# A second single-H100 machine: the graphed group prefills (this commit) against the code before (3e2b085), interleaved.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp prepare
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /root/prep.log 2>&1
mkdir -p /root/b7/before && for f in /root/b7/model/*; do ln -sf $f /root/b7/before/; done
for f in /root/b7/before/*.py; do rm $f; cp .call23/before/$(basename $f) /root/b7/before/; done
run() { stamp "$1 $4 $5"; timeout 200 python3 benchmarks/bench_serve.py --model $3 --serve_script $2 --label $1 --clients $4 --server_args="--max-batch-size=64 $5" --output $OUT/serve.jsonl > /root/serve.log 2>&1; echo "rc $?"; grep -E "^\| $1|Error|error" /root/serve.log | head -8; }
run graphed serve.py /root/b7/model 1,64,64,64
run before .call23/before/serve.py /root/b7/before 64,64,64
[ $SECONDS -lt 330 ] && run graphed serve.py /root/b7/model 64,64
stamp end
