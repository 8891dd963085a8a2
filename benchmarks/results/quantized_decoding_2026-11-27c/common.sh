set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True PYTHONUNBUFFERED=1
stamp() { echo "=== $(date +%T) [$SECONDS s] $*"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
