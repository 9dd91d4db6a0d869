"""GigaAM's log-mel front end computed with torch alone, standing in for `gigaam.preprocess`.

gigaam 0.1.0 builds its features with `torchaudio.transforms.MelSpectrogram`, and its model module
imports torchaudio at the top; torchaudio cannot be installed next to this torch build. The
checkpoints name `gigaam.preprocess.FeatureExtractor` in their config, so `gigaam_model` registers
this module under that name and the checkpoint's own config builds it. The numbers are those of
torchaudio's transform with gigaam's arguments (n_fft = win = sr/40, hop = sr/100, Hann window,
centred reflect padding, power 2, HTK mel scale without normalisation, f 0..sr/2), then the natural
log clamped to [1e-9, 1e9]; the buffers keep torchaudio's names (`featurizer.0.spectrogram.window`,
`featurizer.0.mel_scale.fb`), so a checkpoint that stores them loads them unchanged.

Unlike the library, each signal is transformed at its own length and the padded frames are zero:
a segment's features are the same alone or in a padded batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# gigaam.model imports SAMPLE_RATE from the module this one stands in for (an explicit re-export).
from hark.audio import SAMPLE_RATE as SAMPLE_RATE


def load_audio(*args: object, **kwargs: object) -> Tensor:
    """gigaam reads files through ffmpeg here; Hark hands engines decoded samples instead."""
    raise NotImplementedError("Hark's GigaAM engines take decoded samples, not files")


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> Tensor:
    """Triangular HTK-scale filters from 0 Hz to Nyquist, unnormalised: (n_freqs, n_mels)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    top_mel = 2595.0 * math.log10(1.0 + (sample_rate // 2) / 700.0)
    f_pts = 700.0 * (10 ** (torch.linspace(0.0, top_mel, n_mels + 2) / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


class _Spectrogram(nn.Module):
    window: Tensor  # a registered buffer

    def __init__(self, win_length: int) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(win_length))


class _MelScale(nn.Module):
    fb: Tensor  # a registered buffer

    def __init__(self, n_freqs: int, n_mels: int, sample_rate: int) -> None:
        super().__init__()
        self.register_buffer("fb", mel_filterbank(n_freqs, n_mels, sample_rate))


class MelSpectrogram(nn.Module):
    """Power mel spectrogram of one unbatched signal, (n_mels, frames)."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.spectrogram = _Spectrogram(n_fft)
        self.mel_scale = _MelScale(n_fft // 2 + 1, n_mels, sample_rate)

    def forward(self, signal: Tensor) -> Tensor:
        spec = (
            torch.stft(
                signal,
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                win_length=self.n_fft,
                window=self.spectrogram.window,
                center=True,
                pad_mode="reflect",
                normalized=False,
                onesided=True,
                return_complex=True,
            )
            .abs()
            .pow(2.0)
        )
        return torch.matmul(spec.transpose(-1, -2), self.mel_scale.fb).transpose(-1, -2)


class SpecScaler(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.log(x.clamp(1e-9, 1e9))


class FeatureExtractor(nn.Module):
    """gigaam.preprocess.FeatureExtractor's interface: (signals (B, N), lengths (B,)) →
    (log-mel (B, n_mels, frames), frame counts (B,))."""

    def __init__(self, sample_rate: int, features: int) -> None:
        super().__init__()
        self.hop_length = sample_rate // 100
        self.features = features
        # The signal is reflect-padded by n_fft/2 on each side, which needs that many samples.
        self.min_samples = sample_rate // 80 + 1
        self.featurizer = nn.Sequential(
            MelSpectrogram(sample_rate, sample_rate // 40, self.hop_length, features), SpecScaler()
        )

    def out_len(self, input_lengths: Tensor) -> Tensor:
        return input_lengths.div(self.hop_length, rounding_mode="floor").add(1).long()

    def forward(self, input_signal: Tensor, length: Tensor) -> tuple[Tensor, Tensor]:
        frames = self.out_len(length)
        n_mels = self.features
        out = input_signal.new_zeros((input_signal.shape[0], n_mels, int(frames.max())))
        for i, n in enumerate(length.tolist()):
            out[i, :, : int(frames[i])] = self.featurizer(input_signal[i, : int(n)].float())
        return out, frames
