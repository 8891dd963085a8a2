# Thirty-first session: bitsandbytes 0.50.2 carried (.bnb: its wheel unpacked, the libraries of other CUDA
# releases than the device's 13.0 left out, to fit the carry limit) so that the QLoRA test and the new NF4
# test run (an NF4 folder through inference.py: generate(), a note naming --quantize); the fast path's,
# pipeline's and server's CUDA tests on the tree that now names the fast path's refusal in inference.load; then
# bf16 batch 8 / 32 against 5c359ff once more (f.sh had one pair). Carry .whl, .bnb and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export PYTHONPATH=$PYTHONPATH:$PWD/.bnb
python3 -c "import bitsandbytes; print('bitsandbytes', bitsandbytes.__version__)"
stamp tests
timeout 330 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_fast_generation.py -p no:logging \
  -k "nf4 or qlora or pipeline or server or compiled_fast_path or bitsandbytes" --show-capture=no --tb=short -rs \
  2>&1 | grep -v DEBUG | tail -15 | tee $OUT/test_cuda_nf4_h200.log
for tree in head new; do
  [ $((SECONDS + 70)) -lt ${F_UNTIL:-590} ] || break
  root=.; [ $tree = head ] && root=.head
  stamp generate $tree 2
  (cd $root && timeout 70 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none \
    --batch_sizes 8,32 --speed_only --output /tmp/g.jsonl > /dev/null 2>&1)
  grep -h '"batch' /tmp/g.jsonl | sed "s/^{/{\"run\": \"$tree 2\", /" >> $OUT/generate_bf16_rows_h200.jsonl
  rm -f /tmp/g.jsonl
  grep "\"$tree 2\"" $OUT/generate_bf16_rows_h200.jsonl | cut -c1-200
done
stamp end
