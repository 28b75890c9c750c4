// libavcodec's AAC decoder, libswresample and libopus for LiveSwarm, wrapped once (as CDTLS wraps OpenSSL): Swift
// cannot call FFmpeg's AVERROR macros or libopus's variadic opus_*_ctl, and the decoder's frame loop is shorter in
// C. Swift sees only these opaque types. Every function is safe to call with any bytes; none keeps a pointer it
// was given.
#ifndef CAUDIO_H
#define CAUDIO_H

#include <stddef.h>
#include <stdint.h>

// What the decoder hands on: 48 kHz, two channels, interleaved 32-bit float (what opus_encode_float takes).
#define LS_AUDIO_RATE 48000
#define LS_AUDIO_CHANNELS 2

typedef struct ls_aac_decoder ls_aac_decoder;

// An AAC decoder for the stream an AudioSpecificConfig describes (ISO 14496-3 1.6.2.1; LC, HE-AAC v1 and v2).
// NULL on failure, with the reason in `err`.
ls_aac_decoder *ls_aac_decoder_new(const uint8_t *config, size_t config_len, char *err, size_t errlen);
void ls_aac_decoder_free(ls_aac_decoder *d);

// Decodes one raw AAC access unit and resamples it. Up to `capacity` frames (one sample per channel) are
// written to `out`; returns the number written (0 is normal: the resampler and the decoder keep a little back),
// or -1 with the reason in `err`. The decoder stays usable after an error: the next good access unit decodes.
int ls_aac_decode(ls_aac_decoder *d, const uint8_t *data, size_t len, float *out, int capacity, char *err, size_t errlen);

// What the last decoded access unit was: its sample rate, channel count and samples per channel (0 before any).
int ls_aac_decoder_input_rate(const ls_aac_decoder *d);
int ls_aac_decoder_input_channels(const ls_aac_decoder *d);
int ls_aac_decoder_input_samples(const ls_aac_decoder *d);
// Output frames per channel the resampler holds back (its delay), at 48 kHz.
int ls_aac_decoder_delay(const ls_aac_decoder *d);

typedef struct ls_opus_encoder ls_opus_encoder;

// A 48 kHz stereo Opus encoder (OPUS_APPLICATION_AUDIO) at `bitrate` bits per second. NULL on failure, with the
// reason in `err`.
ls_opus_encoder *ls_opus_encoder_new(int bitrate, char *err, size_t errlen);
void ls_opus_encoder_free(ls_opus_encoder *e);
// Encodes `frames` frames (120, 240, 480, 960, 1920 or 2880) of interleaved stereo float. Returns the packet's
// length, or -1 with the reason in `err`.
int ls_opus_encode(ls_opus_encoder *e, const float *pcm, int frames, uint8_t *out, int capacity, char *err, size_t errlen);
// The encoder's look-ahead in 48 kHz samples (what its output lags its input).
int ls_opus_encoder_lookahead(ls_opus_encoder *e);
int ls_opus_encoder_bitrate(ls_opus_encoder *e);

typedef struct ls_opus_decoder ls_opus_decoder;

// A 48 kHz stereo Opus decoder: what the tests and the benchmark use to hear what the bridge sends.
ls_opus_decoder *ls_opus_decoder_new(char *err, size_t errlen);
void ls_opus_decoder_free(ls_opus_decoder *d);
// Decodes one packet into up to `capacity` frames of interleaved stereo float; NULL `data` conceals a lost
// packet. Returns frames decoded, or -1 with the reason in `err`.
int ls_opus_decode(ls_opus_decoder *d, const uint8_t *data, size_t len, float *out, int capacity, char *err, size_t errlen);

typedef struct ls_aac_encoder ls_aac_encoder;

// libavcodec's AAC-LC encoder for 48 kHz stereo at `bitrate` bits per second: what browsers' Opus becomes for RTMP,
// HTTP-FLV and HLS viewers. NULL on failure, with the reason in `err`.
ls_aac_encoder *ls_aac_encoder_new(int bitrate, char *err, size_t errlen);
void ls_aac_encoder_free(ls_aac_encoder *e);
// Frames per access unit (1024), the encoder's priming delay in samples, its bitrate.
int ls_aac_encoder_frame_size(const ls_aac_encoder *e);
int ls_aac_encoder_delay(const ls_aac_encoder *e);
int ls_aac_encoder_bitrate(const ls_aac_encoder *e);
// The AudioSpecificConfig (ISO 14496-3 1.6.2.1) into `out`; its length, or -1.
int ls_aac_encoder_config(const ls_aac_encoder *e, uint8_t *out, int capacity);
// Encodes exactly frame_size frames of interleaved stereo float. Returns the length of the raw access unit written
// to `out` (0: none yet, the encoder's delay), with its first sample's position in `pts` (samples fed before it,
// less the priming delay: negative for the first); -1 with the reason in `err`.
int ls_aac_encode(ls_aac_encoder *e, const float *pcm, int frames, uint8_t *out, int capacity, int64_t *pts,
                  char *err, size_t errlen);

#endif
