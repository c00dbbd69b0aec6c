"""Put PyPI NeMo 3.x back to the behaviour of AI4Bharat's NeMo 1.23 fork (`nemo-v2`), which made the
IndicConformer release (docs/MODEL.md §6). Import this module before building or running
any NeMo module; `apply()` is idempotent.

Patch A, FilterbankFeatures (frontend):
  * NeMo 3.x calls torch.stft(center=True, pad_mode="constant") (zero padding); the fork used
    pad_mode="reflect".
  * NeMo 3.x get_seq_len returns (N + 2*(n_fft//2) - n_fft) // hop = N // 160 valid frames, so the
    last STFT frame is masked to 0 and left out of the per-feature mean/std; the fork returned
    N // 160 + 1 and used every frame.
Patch B, ConvSubsampling (encoder pre_encode):
  * NeMo 3.x runs the convs through MaskedConvSequential (multiplies by a length mask before each
    conv; adds Mul/Less/Range ops to an export). The fork ran a plain nn.Sequential on
    x.unsqueeze(1) and computed the output lengths with calc_length only.
"""
import torch

import contextlib

_APPLIED = False
ORIGINAL = {}


def apply():
    global _APPLIED
    if _APPLIED:
        return
    from nemo.collections.asr.parts.preprocessing import features as F
    from nemo.collections.asr.parts.submodules import subsampling as S

    def stft(self, x):  # fork: reflect padding
        return torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            center=False if self.exact_pad else True,
            window=self.window.to(dtype=torch.float, device=x.device),
            return_complex=True,
            pad_mode="reflect",
        )

    def get_seq_len(self, seq_len):  # fork: N // hop + 1 frames
        pad_amount = self.stft_pad_amount * 2 if self.stft_pad_amount is not None else self.n_fft // 2 * 2
        seq_len = torch.floor_divide((seq_len + pad_amount - self.n_fft), self.hop_length) + 1
        return seq_len.to(dtype=torch.long)

    ORIGINAL.update({(F.FilterbankFeatures, "stft"): F.FilterbankFeatures.stft,
                     (F.FilterbankFeatures, "get_seq_len"): F.FilterbankFeatures.get_seq_len,
                     (S.ConvSubsampling, "forward"): S.ConvSubsampling.forward})
    F.FilterbankFeatures.stft = stft
    F.FilterbankFeatures.get_seq_len = get_seq_len

    def conv_forward(self, x, lengths):  # fork: plain sequential, lengths from calc_length
        lengths = S.calc_length(
            lengths,
            all_paddings=self._left_padding + self._right_padding,
            kernel_size=self._kernel_size,
            stride=self._stride,
            ceil_mode=self._ceil_mode,
            repeat_num=self._sampling_num,
        )
        if self.conv2d_subsampling:
            x = x.unsqueeze(1)
        else:
            x = x.transpose(1, 2)
        for layer in self.conv:  # MaskedConvSequential is an nn.Sequential: iterate its layers
            x = layer(x)
        if self.conv2d_subsampling:
            b, c, t, f = x.size()
            x = self.out(x.transpose(1, 2).reshape(b, t, -1))
        else:
            x = x.transpose(1, 2)
        return x, lengths

    S.ConvSubsampling.forward = conv_forward
    _APPLIED = True


@contextlib.contextmanager
def unpatched():
    """Temporarily restores NeMo 3.x's own methods (to measure what the patches change)."""
    saved = {k: getattr(*k) for k in ORIGINAL}
    try:
        for (cls, name), fn in ORIGINAL.items():
            setattr(cls, name, fn)
        yield
    finally:
        for (cls, name), fn in saved.items():
            setattr(cls, name, fn)
