# Shared by a.sh-d.sh: the device setup (quantized_decoding_2026-11-27c/common.sh), HEAD's tree in /tmp/base (the
# repository with .call23/base's HEAD copies over it) and `generate NAME DIRECTORY QUANTIZE TIMEOUT`, one
# bench_generate.py run (int4/int8/none at batch 1, 8, 32) whose batch lines it prints.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/ && cp .call23/base/profile_decode.py.bench /tmp/base/benchmarks/profile_decode.py
generate() {
  (cd $2 && timeout $4 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $3 --batch_sizes 8,32 --speed_only --output $OUT/generate_$1_h200.jsonl > /dev/null 2>&1); echo "rc $?"
  grep -h '"batch1"\|"batched"' $OUT/generate_$1_h200.jsonl | cut -c1-220
}
