# Thirty-first session, the last device call: the whole tests/test_cuda.py on the session's final tree, with
# bitsandbytes carried (.bnb, as in g.sh) so that the QLoRA and NF4 tests run too. Carry .whl and .bnb.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export PYTHONPATH=$PYTHONPATH:$PWD/.bnb
stamp tests
timeout 530 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -p no:logging --show-capture=no --tb=short \
  -rs 2>&1 | grep -v DEBUG | tail -12 | tee $OUT/test_cuda_h200.log
stamp end
