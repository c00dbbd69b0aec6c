#!/usr/bin/env python3
"""Reference data for the Audio and Frontend tests (run from the repo root):

    /work/venv-ref/bin/python Tools/reference/make_frontend_refs.py

Writes, under Tests/Fixtures/audio/:
  mel_filterbank_80x257.npy  librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, fmin=0,
                             fmax=8000, htk=False, norm="slaney"), float32 [80, 257]: what NeMo uses.
  <name>.<ext> + <name>.expected.npy
                             small test files in every encoding, made with sox (and, for Opus and
                             MP3, which Debian's sox cannot write, with python-soundfile); the
                             expected mono samples are sox's decoding (all channels, as float32)
                             averaged over channels. Opus/MP3 expect the source signal instead
                             (no independent decoder here), compared by SNR.
  synth_<name>.wav + synth_<name>.features.npy
                             16 kHz test signals and their features from a float32 torch transcription
                             of NeMo's FilterbankFeatures (docs/MODEL.md §3): torch.stft,
                             reflect padding, symmetric Hann(400) in 512, librosa mel, log(x+2^-24),
                             per-band unbiased normalisation. [80, T] like NeMo.
Requires: numpy, librosa, soundfile, torch (CPU), and the sox binary.
Rerunning reproduces every file byte for byte except the .ogg/.opus containers, whose Ogg
stream serial numbers are random (their decoded samples and .expected.npy do not change).
"""
import os, struct, subprocess, sys
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "audio")
os.makedirs(OUT, exist_ok=True)


def sh(*args):
    subprocess.run(args, check=True)


def sox_decode(path):
    """sox's decoding of every channel, float32, interleaved -> (frames, channels)."""
    channels = int(subprocess.run(["soxi", "-c", path], capture_output=True, text=True,
                                  check=True).stdout)
    raw = subprocess.run(["sox", "-D", path, "-t", "f32", "-"], capture_output=True,
                         check=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels)


def save_expected(name, frames):
    mono = frames.astype(np.float64).mean(axis=1).astype(np.float32)
    np.save(os.path.join(OUT, name + ".expected.npy"), mono)


# MARK: - Filterbank
import librosa
fb = librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, fmin=0, fmax=8000, htk=False, norm="slaney")
np.save(os.path.join(OUT, "mel_filterbank_80x257.npy"), fb.astype(np.float32))

# MARK: - Encodings (sox)
tmp = os.path.join(OUT, "_source.wav")
# Two different tones left/right so a wrong channel mix shows; -6 dB keeps sox's int32 path unclipped.
sh("sox", "-D", "-n", "-r", "22050", "-c", "2", "-e", "floating-point", "-b", "32", tmp,
   "synth", "0.1", "sine", "440", "sine", "1234", "vol", "0.5")
variants = {
    "wav_u8": ["-e", "unsigned-integer", "-b", "8"],
    "wav_s16": ["-e", "signed-integer", "-b", "16"],
    "wav_s24": ["-e", "signed-integer", "-b", "24"],
    "wav_s32": ["-e", "signed-integer", "-b", "32"],
    "wav_f32": ["-e", "floating-point", "-b", "32"],
    "wav_f64": ["-e", "floating-point", "-b", "64"],
}
for name, opts in variants.items():
    path = os.path.join(OUT, name + ".wav")
    sh("sox", "-D", tmp, *opts, path)
    save_expected(name, sox_decode(path))

# Six channels at 48 kHz: WAVE_FORMAT_EXTENSIBLE (sox writes it for > 2 channels).
path = os.path.join(OUT, "wav_ext_6ch.wav")
sh("sox", "-D", "-n", "-r", "48000", "-c", "6", "-b", "16", path,
   "synth", "0.05", "sine", "300", "sine", "500", "sine", "700", "sine", "900", "sine", "1100",
   "sine", "1300", "vol", "0.5")
assert open(path, "rb").read()[20:22] == b"\xfe\xff", "expected WAVE_FORMAT_EXTENSIBLE"
save_expected("wav_ext_6ch", sox_decode(path))

# Mono 16-bit at 16 kHz with extra chunks: a LIST/INFO chunk and an odd-sized private chunk
# (padded to even length, as RIFF requires) before the data.
mono16 = os.path.join(OUT, "_mono16.wav")
sh("sox", "-D", tmp, "-c", "1", "-r", "16000", "-b", "16", mono16)
pcm = open(mono16, "rb").read()
fmt_chunk = pcm[12:12 + 8 + 16]
assert fmt_chunk[:4] == b"fmt "
data_pos = pcm.index(b"data")
data_chunk = pcm[data_pos:]


def riff(*chunks):
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(tag, payload):
    return tag + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


info = b"INFO" + chunk(b"INAM", b"vani test\0") + chunk(b"ISFT", b"make_frontend_refs.py\0")
open(os.path.join(OUT, "wav_list.wav"), "wb").write(riff(fmt_chunk, chunk(b"LIST", info), data_chunk))
open(os.path.join(OUT, "wav_odd_chunk.wav"), "wb").write(riff(fmt_chunk, chunk(b"junk", b"abc"), data_chunk))
for name in ["wav_list", "wav_odd_chunk"]:
    save_expected(name, sox_decode(os.path.join(OUT, name + ".wav")))

# FLAC and OGG/Vorbis (44.1 kHz stereo).
src44 = os.path.join(OUT, "_src44.wav")
sh("sox", "-D", tmp, "-r", "44100", "-b", "16", src44)
for name, ext, opts in [("flac_s16", "flac", []), ("ogg_vorbis", "ogg", ["-C", "5"])]:
    path = os.path.join(OUT, f"{name}.{ext}")
    sh("sox", "-D", src44, *opts, path)
    save_expected(name, sox_decode(path))

# MARK: - Opus and MP3 (python-soundfile's own libsndfile; sox here cannot write either)
import soundfile as sf
# A chirp, not a tone: a periodic signal would align at any multiple of its period.
def chirp(rate, seconds=0.25):
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * (200 * t + 4000 * t * t))).astype(np.float32)


c48 = chirp(48000)
stereo = np.stack([c48, 0.5 * c48], axis=1)
sf.write(os.path.join(OUT, "opus_48k.opus"), stereo, 48000, format="OGG", subtype="OPUS")
np.save(os.path.join(OUT, "opus_48k.expected.npy"), stereo.mean(axis=1).astype(np.float32))
c44 = chirp(44100)
sf.write(os.path.join(OUT, "mp3_44k.mp3"), c44, 44100, format="MP3", subtype="MPEG_LAYER_III")
np.save(os.path.join(OUT, "mp3_44k.expected.npy"), c44)

for f in [tmp, mono16, src44]:
    os.remove(f)

# MARK: - Frontend reference (torch transcription of NeMo FilterbankFeatures, eval mode)
import torch


def nemo_features(x):
    x = torch.tensor(x, dtype=torch.float32)[None]
    x = torch.cat((x[:, :1], x[:, 1:] - 0.97 * x[:, :-1]), dim=1)
    window = torch.hann_window(400, periodic=False, dtype=torch.float32)
    s = torch.stft(x, n_fft=512, hop_length=160, win_length=400, window=window, center=True,
                   pad_mode="reflect", return_complex=True)
    s = torch.view_as_real(s)
    s = torch.sqrt(s.pow(2).sum(-1))
    s = s.pow(2.0)
    fbt = torch.tensor(fb, dtype=torch.float32)[None]
    m = torch.matmul(fbt, s)
    m = torch.log(m + 2 ** -24)
    T = m.shape[-1]
    assert T == x.shape[1] // 160 + 1
    mean = m.mean(dim=2, keepdim=True)
    std = m.std(dim=2, keepdim=True) if T > 1 else torch.zeros_like(mean)
    out = (m - mean) / (std + 1e-5)
    return out[0].numpy().astype(np.float32)  # [80, T]


rng = np.random.default_rng(4)
signals = {}
n = 16000
t = np.arange(n) / 16000
chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 3500 * t * t))
signals["chirp_noise_1s"] = (chirp + 0.01 * rng.standard_normal(n)).astype(np.float32)
n = 9137  # not a multiple of the hop
signals["noise_9137"] = (0.1 * rng.standard_normal(n)).astype(np.float32)
n = 400  # one window: 3 frames
signals["short_400"] = (0.2 * rng.standard_normal(n)).astype(np.float32)
for name, x in signals.items():
    # Store as 16-bit so the Swift test reads the same samples through the decoder.
    q = np.round(np.clip(x, -1, 1 - 2 ** -15) * 32768).astype(np.int16)
    sf.write(os.path.join(OUT, f"synth_{name}.wav"), q, 16000, subtype="PCM_16")
    np.save(os.path.join(OUT, f"synth_{name}.features.npy"), nemo_features(q.astype(np.float32) / 32768))

total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
print(f"wrote {len(os.listdir(OUT))} files, {total / 1024:.0f} KiB, to {OUT}")
