# --stream-interval-ms 40 (the default) against 0, interleaved, on one H100; 64 streaming clients of the 7B-shaped
# folder (bench_train.py prepare); bench_serve.py's second table gives the generation thread's phases.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh  # the carried wheels (.whl), the environment
stamp prepare
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /root/prep.log 2>&1
run() { stamp "interval $1 ms, clients $2"; timeout 170 python3 benchmarks/bench_serve.py --model /root/b7/model --label "interval-${1}ms" --clients $2 \
    --server_args="--max-batch-size=64 --stream-interval-ms=$1" --output $OUT/serve_stream_interval_h100.jsonl > /root/s.log 2>&1
  echo "rc $?"; grep -E "^\||Error|error" /root/s.log | head -14; }
run 40 1,64,64,64
run 0 1,64,64,64
[ $SECONDS -lt 400 ] && run 40 64,64,64
[ $SECONDS -lt 480 ] && run 0 64,64
stamp end
