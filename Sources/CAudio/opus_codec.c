#include "CAudio.h"

#include <opus/opus.h>
#include <stdio.h>
#include <stdlib.h>

struct ls_opus_encoder {
    OpusEncoder *encoder;
};

struct ls_opus_decoder {
    OpusDecoder *decoder;
};

static void say(char *err, size_t errlen, const char *what, int code) {
    if (err && errlen) snprintf(err, errlen, "%s: %s", what, opus_strerror(code));
}

ls_opus_encoder *ls_opus_encoder_new(int bitrate, char *err, size_t errlen) {
    int rc = OPUS_OK;
    OpusEncoder *encoder = opus_encoder_create(LS_AUDIO_RATE, LS_AUDIO_CHANNELS, OPUS_APPLICATION_AUDIO, &rc);
    if (!encoder || rc != OPUS_OK) {
        say(err, errlen, "cannot create an Opus encoder", rc);
        return NULL;
    }
    rc = opus_encoder_ctl(encoder, OPUS_SET_BITRATE(bitrate));
    if (rc != OPUS_OK) {
        say(err, errlen, "Opus refused the bitrate", rc);
        opus_encoder_destroy(encoder);
        return NULL;
    }
    ls_opus_encoder *e = malloc(sizeof *e);
    if (!e) {
        opus_encoder_destroy(encoder);
        return NULL;
    }
    e->encoder = encoder;
    return e;
}

void ls_opus_encoder_free(ls_opus_encoder *e) {
    if (!e) return;
    opus_encoder_destroy(e->encoder);
    free(e);
}

int ls_opus_encode(ls_opus_encoder *e, const float *pcm, int frames, uint8_t *out, int capacity, char *err, size_t errlen) {
    int n = opus_encode_float(e->encoder, pcm, frames, out, capacity);
    if (n < 0) {
        say(err, errlen, "Opus encoding failed", n);
        return -1;
    }
    return n;
}

int ls_opus_encoder_lookahead(ls_opus_encoder *e) {
    opus_int32 samples = 0;
    opus_encoder_ctl(e->encoder, OPUS_GET_LOOKAHEAD(&samples));
    return samples;
}

int ls_opus_encoder_bitrate(ls_opus_encoder *e) {
    opus_int32 bitrate = 0;
    opus_encoder_ctl(e->encoder, OPUS_GET_BITRATE(&bitrate));
    return bitrate;
}

ls_opus_decoder *ls_opus_decoder_new(char *err, size_t errlen) {
    int rc = OPUS_OK;
    OpusDecoder *decoder = opus_decoder_create(LS_AUDIO_RATE, LS_AUDIO_CHANNELS, &rc);
    if (!decoder || rc != OPUS_OK) {
        say(err, errlen, "cannot create an Opus decoder", rc);
        return NULL;
    }
    ls_opus_decoder *d = malloc(sizeof *d);
    if (!d) {
        opus_decoder_destroy(decoder);
        return NULL;
    }
    d->decoder = decoder;
    return d;
}

void ls_opus_decoder_free(ls_opus_decoder *d) {
    if (!d) return;
    opus_decoder_destroy(d->decoder);
    free(d);
}

int ls_opus_decode(ls_opus_decoder *d, const uint8_t *data, size_t len, float *out, int capacity, char *err, size_t errlen) {
    int n = opus_decode_float(d->decoder, data, (opus_int32)len, out, capacity, 0);
    if (n < 0) {
        say(err, errlen, "Opus decoding failed", n);
        return -1;
    }
    return n;
}
