# 2026-11-28 (nineteenth session), one GPU: int8 with split tiles listed (the new code) against HEAD (1253bf9,
# .call23/base) end to end, bf16 between them, 7B shape.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
generate() {  # generate NAME DIRECTORY QUANTIZE TIMEOUT
  (cd $2 && timeout $4 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $3 --batch_sizes 8,32 --speed_only --output $OUT/generate_$1_h200.jsonl > $OUT/generate_$1.log 2>&1); echo "rc $?"
  grep -h '"batch1"\|"batched"' $OUT/generate_$1_h200.jsonl | cut -c1-220
}
stamp new; generate int8_split1 . int8 150
stamp base; generate int8_base1 /tmp/base int8 120
stamp bf16; generate bf16_1 . none 90
stamp new; generate int8_split2 . int8 110
stamp base; generate int8_base2 /tmp/base int8 110
stamp end
