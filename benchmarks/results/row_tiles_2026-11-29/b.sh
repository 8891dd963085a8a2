# 2026-11-29 (twenty-seventh session), one GPU. (1) ROW_TILES with (4, 1, 2, 2) and (4, 1, 1, 2) added (a.sh's
# sweep) against HEAD da4347f (.head, the repository's weights linked in): int8 batch 1, alternating processes.
# (2) The first token after a 320-token prompt (question_tokens 318; DEQUANTIZED_ROWS is 288, so the dequantized copy
# and cuBLAS) for bf16, int8 and int4, and int8 and int4 with DEQUANTIZED_ROWS = 384 (a patched copy, /tmp/rows384:
# the kernels), never measured end to end between 288 and 383 rows. (3) A second int8 pair and an int4 pair while the
# call's time lasts. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
rm -rf /tmp/rows384 && mkdir /tmp/rows384 && cp -r *.py benchmarks /tmp/rows384/ && ln -sfn $PWD/weights /tmp/rows384/weights
sed -i 's/^DEQUANTIZED_ROWS = 288$/DEQUANTIZED_ROWS = 384/' /tmp/rows384/quantized_decode_kernels.py
grep -n "^DEQUANTIZED_ROWS" /tmp/rows384/quantized_decode_kernels.py
generate() {  # tree weights name [question tokens]
  [ $((SECONDS + 80)) -lt 560 ] || { stamp "no time for $3"; return; }
  stamp $3
  (cd $1 && timeout $((575 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast \
    --quantize $2 --batch_sizes '' --speed_only --question_tokens ${4:-64} --output /tmp/$3.jsonl > /dev/null 2>&1)
  grep -h '"batch1"' /tmp/$3.jsonl | cut -c1-250
  python3 -c "import json, sys; [print(json.dumps({'run': sys.argv[1], **json.loads(line)})) for line in open(sys.argv[2])]" \
    $3 /tmp/$3.jsonl >> $OUT/generate_h200.jsonl  # one file back: a call returns at most 8
}
here=$PWD
generate $here int8 int8_new_1
generate $here/.head int8 int8_head_1
for weights in none int8 int4; do generate $here $weights prompt320_${weights} 318; done
for weights in int8 int4; do generate /tmp/rows384 $weights prompt320_${weights}_rows384 318; done
generate $here/.head int8 int8_head_2
generate $here int8 int8_new_2
generate $here int4 int4_new_1
generate $here/.head int4 int4_head_1
stamp end
