"""Reference values for tests/audio.test.ts, computed with PyTorch.

Run with the system interpreter that has torch (Debian's python3-torch, 1.13; torchaudio is not
needed and usually not installed there):
    /usr/bin/python3 python/audio_reference.py
Writes tests/fixtures/audio/reference.json with
  log_mel     BYOL-A's features of a synthetic chirp: torch.stft (centred, reflect padding, periodic
              Hann window of 400 samples in a 1024-point FFT, hop 160), the power spectrum, a mel
              filterbank built here from torchaudio's melscale_fbanks formula (HTK scale, no
              normalisation, 64 mels, 60-7800 Hz), log(mel + float32 eps); in float64.
  filterbank_sums  each mel filter's sum over the FFT bins.
  resample    a test signal resampled 44100->16000, 22050->16000 and 8000->16000 by torchaudio's
              resample algorithm (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99: the
              per-phase kernel and strided conv1d of torchaudio/functional/functional.py,
              transcribed), in float64. Where torchaudio is importable it is checked against it.
The input signals are given by formulas (the test computes them the same way), evaluated in float64
and rounded to float32, the form the library decodes audio into.
"""
import json
import math
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'audio', 'reference.json')

SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 400
HOP = 160
N_MELS = 64
F_MIN = 60.0
F_MAX = 7800.0

CHIRP = {'seconds': 0.5, 'f0': 100.0, 'f1': 7000.0, 'amplitude': 0.5}
TEST_SIGNAL = {'seconds': 0.1, 'tones_hz': [440.0, 3000.0, 7500.0], 'amplitudes': [0.5, 0.3, 0.2]}


def chirp(sample_rate):
    """A linear chirp f0 -> f1 over `seconds`: 0.5 sin(2 pi (f0 t + (f1 - f0) t^2 / (2 T)))."""
    c = CHIRP
    t = np.arange(int(round(c['seconds'] * sample_rate)), dtype=np.float64) / sample_rate
    phase = 2 * math.pi * (c['f0'] * t + (c['f1'] - c['f0']) * t * t / (2 * c['seconds']))
    return torch.from_numpy((c['amplitude'] * np.sin(phase)).astype(np.float32))


def test_signal(sample_rate):
    """A sum of tones, sum_k a_k sin(2 pi f_k n / sample_rate), float32."""
    s = TEST_SIGNAL
    n = np.arange(int(round(s['seconds'] * sample_rate)), dtype=np.float64)
    x = sum(a * np.sin(2 * math.pi * f * n / sample_rate) for f, a in zip(s['tones_hz'], s['amplitudes']))
    return torch.from_numpy(x.astype(np.float32))


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank():
    """torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None, mel_scale='htk'), float64."""
    n_freqs = N_FFT // 2 + 1
    all_freqs = torch.linspace(0, SAMPLE_RATE // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2, dtype=torch.float64)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)  # [n_freqs, n_mels]


def log_mel(x):
    window = torch.hann_window(WIN_LENGTH, dtype=torch.float64)
    spec = torch.stft(x.double(), N_FFT, hop_length=HOP, win_length=WIN_LENGTH, window=window, center=True,
                      pad_mode='reflect', normalized=False, onesided=True, return_complex=True)
    power = spec.abs() ** 2  # [n_freqs, frames]
    mel = mel_filterbank().t() @ power
    return torch.log(mel + torch.finfo(torch.float32).eps)


def sinc_resample(x, orig, new, lowpass_filter_width=6, rolloff=0.99):
    """torchaudio.functional.resample (sinc_interp_hann), transcribed, in float64."""
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t *= base
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    kernels = torch.where(t == 0, torch.tensor(1.0, dtype=torch.float64), t.sin() / t)
    kernels *= window * (base / orig)
    length = x.shape[-1]
    padded = torch.nn.functional.pad(x.double()[None, None], (width, width + orig))
    out = torch.nn.functional.conv1d(padded, kernels, stride=orig)
    out = out.transpose(1, 2).reshape(-1)
    return out[: math.ceil(new * length / orig)]


def main():
    torch.set_num_threads(1)
    fixture = {
        'settings': {'sampleRate': SAMPLE_RATE, 'nFft': N_FFT, 'windowLength': WIN_LENGTH, 'hopLength': HOP,
                     'nMels': N_MELS, 'fMin': F_MIN, 'fMax': F_MAX},
        'chirp': CHIRP,
        'test_signal': TEST_SIGNAL,
        'log_mel': None,
        'filterbank_sums': mel_filterbank().sum(0).tolist(),
        'resample': [],
    }
    lm = log_mel(chirp(SAMPLE_RATE))
    fixture['log_mel'] = {'shape': list(lm.shape), 'data': [round(v, 6) for v in lm.flatten().tolist()]}
    for orig in (44100, 22050, 8000):
        y = sinc_resample(test_signal(orig), orig, SAMPLE_RATE)
        try:
            import torchaudio.functional as AF  # noqa: PLC0415 (optional check)
            ta = AF.resample(test_signal(orig).double(), orig, SAMPLE_RATE)
            assert torch.allclose(ta, y, atol=1e-9), f'transcription differs from torchaudio at {orig} Hz'
        except ImportError:
            pass
        fixture['resample'].append({'from': orig, 'to': SAMPLE_RATE, 'data': [round(v, 7) for v in y.tolist()]})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {os.path.normpath(OUT)}: log-mel {lm.shape[0]}x{lm.shape[1]}, '
          f'resampled {[len(r["data"]) for r in fixture["resample"]]}')


if __name__ == '__main__':
    main()
