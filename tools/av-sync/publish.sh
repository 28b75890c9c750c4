#!/usr/bin/env bash
# Publish a lip-sync test stream: once a second the picture turns white and a 1 kHz beep sounds, both for 100 ms
# and both from the same instant of ffmpeg's timeline. web-demo/live/?sync=1 pairs the flashes with the beeps as
# they are displayed and played, and shows audio minus video.
#
#   publish.sh URL [SECONDS] [GOP_FRAMES]
#
#   URL         rtmp://HOST:1935/APP/STREAM
#   SECONDS     stop after this many seconds; 0 or absent = run until killed
#   GOP_FRAMES  keyframe interval in frames (default 30 = 1 s at 30 fps)
#
# Environment:
#   SAMPLE_RATE=44100   AAC sample rate (ffmpeg's aac encoder: 8000 to 96000)
#   CHANNELS=2          AAC channels
#   AUDIO_KBPS=128      AAC bitrate
#   FFMPEG=/usr/bin/ffmpeg, LOGLEVEL=warning
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '5,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi

url=$1
seconds=${2:-0}
gop=${3:-30}
rate=${SAMPLE_RATE:-44100}
channels=${CHANNELS:-2}
ffmpeg=${FFMPEG:-/usr/bin/ffmpeg}

duration=()
if [[ $seconds != 0 ]]; then duration=(-t "$seconds"); fi

# The picture: dark grey, white while mod(t,1) < 0.1. The sound: silence, a 1 kHz sine at half scale while
# mod(t,1) < 0.1. Both are computed from their own timestamps, so they start together on the stream's timeline.
exec "$ffmpeg" -hide_banner -loglevel "${LOGLEVEL:-warning}" -nostdin -re \
  -f lavfi -i "color=c=0x202020:s=640x360:r=30,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t\,1)\,0.1)'" \
  -f lavfi -i "aevalsrc='if(lt(mod(t\,1)\,0.1)\,0.5*sin(2*PI*1000*t)\,0)':s=${rate}:c=mono" \
  "${duration[@]}" \
  -c:v libx264 -preset veryfast -tune zerolatency -g "$gop" -pix_fmt yuv420p \
  -c:a aac -b:a "${AUDIO_KBPS:-128}k" -ac "$channels" -ar "$rate" \
  -f flv "$url"
