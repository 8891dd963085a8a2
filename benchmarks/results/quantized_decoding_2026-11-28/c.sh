source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp sweep
timeout 200 python3 benchmarks/results/quantized_decoding_2026-11-28/attention_sweep.py > $OUT/sweep.log 2>&1; echo "rc $?"
grep -v -i warn $OUT/sweep.log | tail -3
set -- $(grep '^best' $OUT/sweep.log)
sed -i "s/^BLOCK_SLOTS = .*/BLOCK_SLOTS = $2/; s/^WARPS = .*/WARPS = $3/" decode_attention.py; grep -n "^BLOCK_SLOTS\|^WARPS" decode_attention.py
rm -rf /tmp/head && mkdir /tmp/head && cp -r *.py benchmarks /tmp/head/ && cp .call23/head/*.py /tmp/head/
for version in new head; do
  stamp "generate $version"
  dir=.; [ $version = head ] && dir=/tmp/head
  (cd $dir && timeout 170 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int8,none --batch_sizes 8,32 --speed_only --output $OUT/generate_$version.jsonl > $OUT/generate_$version.log 2>&1); echo "rc $?"
  grep -h '"batch1"\|"batched"' $OUT/generate_$version.jsonl | cut -c1-200
done
stamp end
