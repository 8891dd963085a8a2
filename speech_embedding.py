"""Google's speech_embedding network and its log-mel front end, in torch, with the weights openwakeword ships.

`openwakeword==0.4.0` carries both as ONNX files in its wheel (later versions download them on first use): a front
end (16 kHz samples at 16-bit scale -> a windowed 512-point STFT every 10 ms, as a convolution -> 32 mel bins ->
decibels, floored 80 dB under the loudest bin, then x / 10 + 2 as openwakeword applies it) and a keyword-spotting CNN
trained by Google (76 frames, about 0.8 s, -> one 96-d vector; openwakeword slides it every 8 frames). It tells spoken
words apart across voices it never heard (benchmarks/probe_speech_embedding.py): the offline speech encoder of issue
17's demo. The weights are read from the ONNX files themselves (`onnx`); tests/test_speech_embedding.py checks every
output against onnxruntime running those files.
"""

import os

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

try:
    from .audio_features import SAMPLE_RATE
    from .configuration_nextgpt import SpeechEmbeddingConfig
except ImportError:
    from audio_features import SAMPLE_RATE
    from configuration_nextgpt import SpeechEmbeddingConfig

SPEECH_TOWER = SpeechEmbeddingConfig.model_type  # what --audio_tower takes
MEL_BINS = 32
WINDOW_FRAMES, WINDOW_STRIDE = 76, 8  # the network's input, and openwakeword's step between windows
EMBEDDING_WIDTH = 96
FFT_SIZE, HOP = 512, 160
MIN_SAMPLES = FFT_SIZE + HOP * (WINDOW_FRAMES - 1)  # one window: 0.782 s
TOP_DB = 80.0
CLAMP = -0.4  # every activation of the network is floored here (a tf.math.maximum after each leaky ReLU)
# The network after its first convolution: each number is a convolution's output channels, its kernel alternating
# between (1, 3) across mel bins (one bin of zero padding each side) and (3, 1) along time (no padding); "pool" is a
# 2 x 2 max-pool over (time, mel), "pool mel" one over mel bins only.
LAYERS = [24, 24, "pool", 48, 48, 48, 48, "pool mel", 72, 72, 72, 72, "pool", 96, 96, 96, 96, "pool mel", 96, 96, 96,
          96, "pool"]


def openwakeword_model_files() -> tuple[str, str]:
    """The front end's and the network's ONNX files inside the installed openwakeword package."""
    try:
        import openwakeword
    except ImportError as error:
        raise ImportError("the speech encoder's weights come with openwakeword 0.4.0: pip install "
                          "'nano-nextgpt[speech]' (or openwakeword==0.4.0 onnx)") from error
    folder = os.path.join(os.path.dirname(openwakeword.__file__), "resources", "models")
    paths = (os.path.join(folder, "melspectrogram.onnx"), os.path.join(folder, "embedding_model.onnx"))
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"{missing} not found: later openwakeword versions download their models; install "
                                "openwakeword==0.4.0")
    return paths


def onnx_weights(path: str) -> tuple[dict[str, torch.Tensor], list]:
    """An ONNX file's initializers by name, and its nodes in order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    return {init.name: torch.from_numpy(numpy_helper.to_array(init).copy()) for init in graph.initializer}, graph.node


class LogMelFrontEnd(nn.Module):
    """(batch, samples) at 16-bit scale -> (batch, frames, 32), one frame every 10 ms (no padding at the ends)."""

    def __init__(self):
        super().__init__()
        bins = FFT_SIZE // 2 + 1
        # Random until openwakeword's are loaded, as every weight is (and the mel weights are never negative).
        self.register_buffer("dft_real", 0.05 * torch.randn(bins, 1, FFT_SIZE))
        self.register_buffer("dft_imag", 0.05 * torch.randn(bins, 1, FFT_SIZE))
        self.register_buffer("mel", 0.01 * torch.rand(bins, MEL_BINS))

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        signal = samples[:, None].to(self.mel.dtype)
        power = (F.conv1d(signal, self.dft_real, stride=HOP) ** 2 + F.conv1d(signal, self.dft_imag, stride=HOP) ** 2)
        decibels = 10 * torch.log10((power.transpose(1, 2) @ self.mel).clamp(min=1e-10))
        # Floored 80 dB under each clip's loudest bin (the ONNX graph takes the loudest over the whole batch: the
        # same for one clip, and clips of a batch stay independent here).
        loudest = decibels.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(decibels, loudest - TOP_DB) / 10 + 2


class SpeechEmbeddingNetwork(nn.Module):
    """(batch, 76 frames, 32 mel bins) -> (batch, 96)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 24, 3, bias=False)
        self.stem_norm = nn.BatchNorm2d(24, eps=1e-3)
        layers, channels = [], 24
        for layer in LAYERS:
            if layer == "pool":
                layers.append(nn.MaxPool2d(2))
            elif layer == "pool mel":
                layers.append(nn.MaxPool2d((1, 2)))
            else:
                along_time = sum(isinstance(previous, nn.Conv2d) for previous in layers) % 2 == 1
                layers.append(nn.Conv2d(channels, layer, (3, 1)) if along_time else
                              nn.Conv2d(channels, layer, (1, 3), padding=(0, 1)))
                channels = layer
        self.layers = nn.ModuleList(layers)
        self.head = nn.Conv2d(channels, EMBEDDING_WIDTH, (3, 1), bias=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        hidden = F.pad(frames[:, None], (1, 1))  # one mel bin of zeros each side
        hidden = F.leaky_relu(self.stem_norm(F.relu(self.stem(hidden))), 0.2).clamp(min=CLAMP)
        for layer in self.layers:
            hidden = layer(hidden) if isinstance(layer, nn.MaxPool2d) else F.leaky_relu(layer(hidden), 0.2).clamp(
                min=CLAMP)
        return self.head(hidden).flatten(1)


class SpeechEmbedding(nn.Module):
    """16 kHz samples at 16-bit scale (batch, samples) -> (batch, windows, 96): one embedding per 76-frame window,
    every 8 frames (80 ms); a clip needs at least 0.782 s (76 frames)."""

    def __init__(self):
        super().__init__()
        self.front_end = LogMelFrontEnd()
        self.network = SpeechEmbeddingNetwork()

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        if samples.shape[1] < MIN_SAMPLES:
            raise ValueError(f"a clip of {samples.shape[1] / SAMPLE_RATE:.3f} s is too short for the speech encoder: "
                             f"it needs {WINDOW_FRAMES} frames, {MIN_SAMPLES / SAMPLE_RATE:.3f} s")
        frames = self.front_end(samples)
        windows = frames.unfold(1, WINDOW_FRAMES, WINDOW_STRIDE).transpose(2, 3)  # (batch, windows, 76, 32)
        return self.network(windows.flatten(0, 1)).unflatten(0, windows.shape[:2])

    @classmethod
    @torch.no_grad()
    def from_openwakeword(cls) -> "SpeechEmbedding":
        """With the weights of openwakeword 0.4.0's two ONNX files, in eval mode."""
        front_end_path, network_path = openwakeword_model_files()
        model = cls()
        initializers, _ = onnx_weights(front_end_path)
        model.front_end.dft_real.copy_(initializers["0.stft.conv_real.weight"])
        model.front_end.dft_imag.copy_(initializers["0.stft.conv_imag.weight"])
        model.front_end.mel.copy_(initializers["1.melW"])
        initializers, nodes = onnx_weights(network_path)
        norm = next(node for node in nodes if node.op_type == "BatchNormalization")
        for parameter, name in zip(("weight", "bias", "running_mean", "running_var"), norm.input[1:]):
            getattr(model.network.stem_norm, parameter).copy_(initializers[name])
        convolutions = [model.network.stem, *(layer for layer in model.network.layers if isinstance(layer, nn.Conv2d)),
                        model.network.head]
        onnx_convolutions = [node for node in nodes if node.op_type == "Conv"]
        if len(onnx_convolutions) != len(convolutions):
            raise ValueError(f"{network_path} has {len(onnx_convolutions)} convolutions, not {len(convolutions)}: "
                             "not openwakeword 0.4.0's speech_embedding model")
        for convolution, node in zip(convolutions, onnx_convolutions):
            convolution.weight.copy_(initializers[node.input[1]])
            if convolution.bias is not None:
                convolution.bias.copy_(initializers[node.input[2]])
        return model.eval()


class SpeechEmbeddingModel(PreTrainedModel):
    """The encoder as NextGPT's audio tower: `input_features` (batch, samples), clips of `config.clip_seconds` at 16
    kHz and 16-bit scale (`speech_features`) -> `last_hidden_state` (batch, windows, 96), `pooler_output` their mean
    (batch, 96)."""

    config: SpeechEmbeddingConfig
    config_class = SpeechEmbeddingConfig
    main_input_name = "input_features"

    def __init__(self, config: SpeechEmbeddingConfig):
        super().__init__(config)
        self.encoder = SpeechEmbedding()
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass  # the modules' own initialisation; the real weights come from openwakeword (from_openwakeword)

    def train(self, mode: bool = True) -> "SpeechEmbeddingModel":
        return super().train(False)  # always frozen: its batch norm keeps the statistics it was trained with

    def forward(self, input_features: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        embeddings = self.encoder(input_features)
        return BaseModelOutputWithPooling(last_hidden_state=embeddings, pooler_output=embeddings.mean(dim=1))

    @classmethod
    def from_openwakeword(cls, config: SpeechEmbeddingConfig | None = None) -> "SpeechEmbeddingModel":
        model = cls(config or SpeechEmbeddingConfig())
        model.encoder = SpeechEmbedding.from_openwakeword()
        return model.eval()


def speech_features(waveform: torch.Tensor, clip_seconds: float) -> torch.Tensor:
    """(channels, samples) float audio in [-1, 1] at 16 kHz (`audio_features.load_audio`) -> (1, clip samples): the
    channels' mean at 16-bit scale, centred in a clip of `clip_seconds` (cut to its middle where longer, padded with
    silence where shorter), one clip per audio as the tower takes it."""
    length = round(clip_seconds * SAMPLE_RATE)
    if length < MIN_SAMPLES:
        raise ValueError(f"clip_seconds {clip_seconds} is shorter than the speech encoder's window "
                         f"({MIN_SAMPLES / SAMPLE_RATE:.3f} s)")
    mono = waveform.float().mean(dim=0) * 32767
    start = max((len(mono) - length) // 2, 0)
    mono = mono[start:start + length]
    before = (length - len(mono)) // 2
    return F.pad(mono, (before, length - len(mono) - before))[None]


__all__ = ["SPEECH_TOWER", "SpeechEmbedding", "SpeechEmbeddingModel", "SpeechEmbeddingNetwork", "LogMelFrontEnd",
           "openwakeword_model_files", "speech_features"]
