#!/usr/bin/env bash
# Publish a test stream whose every frame carries the publisher's wall clock as a
# machine-readable strip of black/white cells (the "glass clock"), for glass-to-glass
# delay measurements. Encoding: tools/glass-clock/README.md. Reader: web-demo/shared/glass-clock.js.
#
#   publish.sh URL [SECONDS] [GOP_FRAMES]
#
#   URL         rtmp://HOST:1935/APP/STREAM, or a file path (/tmp/clock.mp4, /tmp/clock.flv, ...)
#   SECONDS     stop after this many seconds; 0 or absent = run until killed
#   GOP_FRAMES  keyframe interval in frames (default 30 = 1 s at 30 fps)
#
# Environment:
#   FORMAT=flv|mp4|mpegts|...  output format (default: flv for rtmp:// URLs, else from the file extension)
#   SIZE=640x360               frame size; the width must be a multiple of 64 (cells are WIDTH/32 px square)
#   FPS=30                     frame rate
#   FFMPEG=/usr/bin/ffmpeg     ffmpeg binary
#   LOGLEVEL=warning           ffmpeg -loglevel
#   TUNE=zerolatency           x264 tune; TUNE=none for x264's defaults (B-frames, b-pyramid, lookahead)
#   EXTRA_VIDEO_ARGS="..."     appended to the video encoder options (e.g. "-profile:v baseline")
#   EXTRA_OUTPUT_ARGS="..."    appended to the muxer options (e.g. "-hls_time 1 -hls_flags delete_segments")
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '5,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi

url=$1
seconds=${2:-0}
gop=${3:-30}
size=${SIZE:-640x360}
fps=${FPS:-30}
ffmpeg=${FFMPEG:-/usr/bin/ffmpeg}
loglevel=${LOGLEVEL:-warning}

width=${size%x*}
if (( width % 64 != 0 )); then
  echo "publish.sh: SIZE width $width is not a multiple of 64" >&2
  exit 2
fi
cell=$(( width / 32 ))

format=${FORMAT:-}
if [[ -z $format && $url == rtmp*://* ]]; then format=flv; fi

# geq builds the 32x2 cell pattern at one pixel per cell; nearest-neighbour scaling then
# blows it up to WIDTH x 2*WIDTH/32. Evaluating the expression on 64 pixels instead of the
# full strip keeps its cost negligible even though it runs a 48-step CRC per pixel.
#
# T is the frame time in seconds; setpts=RTCTIME/1000 with a 1/1000 time base makes it
# the wall clock (ms resolution) at the moment the frame passes the filter, which with -re
# is the moment the frame is "captured".
#   ld(0) = ms since the Unix epoch (48 bits)
#   ld(1) = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, MSB first) over those 48 bits, big-endian
#   cell k = Y*32+X carries bit 63-k of (ms << 16 | crc): white (Y'=235) = 1, black (Y'=16) = 0
# av_expr has no xor: a xor b = a + b - 2*(a and b).
crc_expr="st(1,65535);st(2,47);while(gte(ld(2),0),st(3,mod(floor(ld(0)/pow(2,ld(2))),2));st(4,gte(ld(1),32768));st(1,mod(ld(1)*2,65536));if(ld(3)+ld(4)-2*ld(3)*ld(4),st(1,ld(1)+4129-2*bitand(ld(1),4129)));st(2,ld(2)-1))"
bit_expr="st(5,Y*32+X);16+219*if(lt(ld(5),48),mod(floor(ld(0)/pow(2,47-ld(5))),2),mod(floor(ld(1)/pow(2,63-ld(5))),2))"
lum_expr="st(0,round(T*1000));${crc_expr};${bit_expr}"

# Both branches are re-based to frame numbers (N in 1/FPS) so overlay pairs each frame with
# its own strip.
graph="[0:v]split[main][s];"
graph+="[s]crop=32:2:0:0,settb=1/1000,setpts=RTCTIME/1000,geq=lum='${lum_expr}':cb=128:cr=128,"
graph+="scale=${width}:$(( 2 * cell )):flags=neighbor,settb=1/${fps},setpts=N[strip];"
graph+="[main]settb=1/${fps},setpts=N[base];"
graph+="[base][strip]overlay=0:0,format=yuv420p[v]"

args=(-hide_banner -nostdin -loglevel "$loglevel" -y
  -re -f lavfi -i "testsrc2=size=${size}:rate=${fps}"
  -re -f lavfi -i "sine=frequency=440:sample_rate=48000"
  -filter_complex "$graph"
  -map '[v]' -map 1:a
  -c:v libx264 -preset veryfast -g "$gop" -keyint_min "$gop" -sc_threshold 0
  -pix_fmt yuv420p)
tune=${TUNE:-zerolatency}
if [[ $tune != none ]]; then args+=(-tune "$tune"); fi
if [[ -n ${EXTRA_VIDEO_ARGS:-} ]]; then
  # shellcheck disable=SC2206  # word splitting is the point
  args+=(${EXTRA_VIDEO_ARGS})
fi
args+=(-c:a aac -b:a 96k)
if [[ $seconds != 0 ]]; then args+=(-t "$seconds"); fi
if [[ -n $format ]]; then args+=(-f "$format"); fi
case ${format:-${url##*.}} in
  mp4|mov) args+=(-movflags +faststart) ;;   # moov first: plays over servers without Range support
  flv) args+=(-flvflags no_duration_filesize) ;;
esac
if [[ -n ${EXTRA_OUTPUT_ARGS:-} ]]; then
  # shellcheck disable=SC2206
  args+=(${EXTRA_OUTPUT_ARGS})
fi
args+=("$url")

exec "$ffmpeg" "${args[@]}"
