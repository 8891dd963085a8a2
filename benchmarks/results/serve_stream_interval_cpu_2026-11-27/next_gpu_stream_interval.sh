# NOT YET RUN (no device time was left): on one H100, --stream-interval-ms 40 (the default) against 0, interleaved,
# 64 streaming clients of the 7B-shaped folder; bench_serve.py's second table gives the generation thread's phases.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh  # the carried wheels (.whl), the environment
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 16 > /root/prep.log 2>&1
for round in 1 2; do for ms in 0 40; do stamp "round $round, interval $ms ms"
  timeout 140 python3 benchmarks/bench_serve.py --model /root/b7/model --label "interval-${ms}ms" --clients 1,64,64 \
    --server_args="--max-batch-size=64 --stream-interval-ms=$ms" --output $OUT/serve_stream_interval_h100.jsonl \
    > /root/s.log 2>&1; echo "rc $?"; grep -E "^\| interval|Error|error" /root/s.log
done; done
stamp end
