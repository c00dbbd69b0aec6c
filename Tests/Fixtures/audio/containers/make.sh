#!/usr/bin/env bash
# Rebuilds the container fixtures (issue 18, kind 12) from Samples/hi-sample.wav with Debian 12's
# ffmpeg (5.1) and sox (14.4.2 + libsox-fmt-all for AMR-NB: Debian's ffmpeg has no AMR encoder).
#   apt-get install ffmpeg sox libsox-fmt-all && Tests/Fixtures/audio/containers/make.sh
# Every file is ~1 s of the sample's speech (0.5–1.5 s), small enough to commit. The encoders
# are not bit-exact across versions: the tests compare with source.wav by SNR, not bytes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
cd "$here"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y -bitexact "$@"; }

# The source every format is compared with: 1 s of speech, 16 kHz mono 16-bit.
sox "$root/Samples/hi-sample.wav" source.wav trim 0.5 1.0

ff -i source.wav -ar 48000 -c:a libopus -b:a 32k -f webm webm_opus.webm            # browsers' MediaRecorder
ff -i source.wav -ar 44100 -ac 2 -c:a aac -b:a 96k -movflags +faststart m4a_aac.m4a  # Safari, iPhone voice memos
ff -i source.wav -ar 22050 -c:a aac -b:a 48k -f adts aac_adts.aac                   # raw AAC (ADTS)
sox source.wav -r 8000 -C 7 -t amr-nb amr_nb.amr                                             # AMR-NB 12.2 kbit/s (Android)
ff -i amr_nb.amr -c:a copy -movflags +faststart -f 3gp amr_nb.3gp                  # the same stream in 3GP
# An M4A with its index ('moov') after the audio, as many phone recorders write it: cut, it
# cannot be read at all, and the error must say what was found.
ff -i source.wav -t 0.3 -c:a aac -b:a 32k -f ipod aac_moov_last.m4a
# libsndfile's own formats, long enough that a cut at 60 % leaves whole frames and Ogg pages
# (an Ogg page holds ~1 s).
sox source.wav flac_1s.flac
sox "$root/Samples/hi-sample.wav" -C 3 vorbis_4s.ogg
ff -i "$root/Samples/hi-sample.wav" -ar 48000 -c:a libopus -b:a 24k -page_duration 500000 -f ogg opus_4s.opus
ff -i source.wav -c:a alac -f caf caf_alac.caf                                      # Apple Core Audio Format
ff -i source.wav -ar 48000 -c:a libopus -b:a 32k -f caf caf_opus.caf               # CAF holding Opus (libsndfile: no;
                                                                                    # ffmpeg 5.1 cannot mux AAC into CAF)
ff -i source.wav -ar 22050 -c:a wmav2 -b:a 64k -f asf wma_v2.wma                    # Windows Media Audio

# The whole sample as browsers and phones send it, for the end-to-end test (same text as the WAV).
ff -i "$root/Samples/hi-sample.wav" -ar 48000 -c:a libopus -b:a 48k -f webm hi-sample.webm
ff -i "$root/Samples/hi-sample.wav" -c:a aac -b:a 96k -movflags +faststart hi-sample.m4a

# MP3 inside WAV (format tag 0x0055): libsndfile would hand it to libmpg123, which writes to stderr.
ff -i source.wav -t 0.5 -c:a libmp3lame -b:a 32k -f wav mp3_in_wav.wav

# A container without an audio stream (its error must name the container and what it holds).
ff -f lavfi -i "color=c=black:s=16x16:d=0.2:r=10" -c:v mpeg4 -f mp4 video_only.mp4

ls -l "$here"
