"""Independent numpy (float64) implementation of the frontend recipe in docs/MODEL.md §3.
Used only to check the patched NeMo preprocessor; the fixtures' features come from NeMo."""
import numpy as np

SR, N_FFT, WIN, HOP, N_MELS, PREEMPH, GUARD, EPS = 16000, 512, 400, 160, 80, 0.97, 2.0 ** -24, 1e-5


def _hz_to_mel(f):  # Slaney scale
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank():
    fft_freqs = np.linspace(0, SR / 2, N_FFT // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SR / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    w = np.zeros((N_MELS, len(fft_freqs)))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS]))[:, None]  # Slaney normalisation
    return w


def features(x):
    """x: float samples in [-1, 1], shape [N]. Returns [80, N // 160 + 1] float64."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    T = n // HOP + 1
    y = np.concatenate([x[:1], x[1:] - PREEMPH * x[:-1]])
    p = np.pad(y, (N_FFT // 2, N_FFT // 2), mode="reflect")  # mirror without repeating the edge
    k = np.arange(WIN)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * k / (WIN - 1))  # symmetric (periodic=False)
    window = np.zeros(N_FFT)
    off = (N_FFT - WIN) // 2  # 56
    window[off:off + WIN] = hann
    frames = np.stack([p[HOP * t: HOP * t + N_FFT] * window for t in range(T)])
    spec = np.fft.rfft(frames, n=N_FFT, axis=1)
    power = spec.real ** 2 + spec.imag ** 2  # [T, 257]
    mel = mel_filterbank() @ power.T  # [80, T]
    logmel = np.log(mel + GUARD)
    mu = logmel.mean(axis=1, keepdims=True)
    if T > 1:
        sd = np.sqrt(((logmel - mu) ** 2).sum(axis=1, keepdims=True) / (T - 1))
    else:
        sd = np.zeros_like(mu)
    return (logmel - mu) / (sd + EPS)
