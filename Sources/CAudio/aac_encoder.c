#include "CAudio.h"

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <stdio.h>
#include <string.h>

// libavcodec's native AAC encoder (AAC-LC), 48 kHz stereo: Opus from browsers becomes what RTMP, HTTP-FLV and HLS
// viewers play.
struct ls_aac_encoder {
    AVCodecContext *codec;
    AVFrame *frame;
    AVPacket *packet;
    int64_t next_pts;
};

static void describe(char *err, size_t errlen, const char *what, int code) {
    if (!err || errlen == 0) return;
    char reason[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, reason, sizeof reason);
    snprintf(err, errlen, "%s: %s", what, reason);
}

ls_aac_encoder *ls_aac_encoder_new(int bitrate, char *err, size_t errlen) {
    av_log_set_level(AV_LOG_QUIET);
    const AVCodec *aac = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!aac) {
        if (err && errlen) snprintf(err, errlen, "libavcodec has no AAC encoder");
        return NULL;
    }
    ls_aac_encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->codec = avcodec_alloc_context3(aac);
    e->frame = av_frame_alloc();
    e->packet = av_packet_alloc();
    if (!e->codec || !e->frame || !e->packet) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        ls_aac_encoder_free(e);
        return NULL;
    }
    e->codec->sample_fmt = AV_SAMPLE_FMT_FLTP;
    e->codec->sample_rate = LS_AUDIO_RATE;
    av_channel_layout_default(&e->codec->ch_layout, LS_AUDIO_CHANNELS);
    e->codec->bit_rate = bitrate;
    e->codec->time_base = (AVRational){1, LS_AUDIO_RATE};
    e->codec->profile = FF_PROFILE_AAC_LOW;
    // Global header: the AudioSpecificConfig in extradata (an FLV sequence header), raw access units out (no ADTS).
    e->codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(e->codec, aac, NULL);
    if (rc < 0) {
        describe(err, errlen, "cannot open the AAC encoder", rc);
        ls_aac_encoder_free(e);
        return NULL;
    }
    e->frame->format = AV_SAMPLE_FMT_FLTP;
    e->frame->nb_samples = e->codec->frame_size;
    e->frame->sample_rate = LS_AUDIO_RATE;
    av_channel_layout_copy(&e->frame->ch_layout, &e->codec->ch_layout);
    rc = av_frame_get_buffer(e->frame, 0);
    if (rc < 0) {
        describe(err, errlen, "cannot allocate an audio frame", rc);
        ls_aac_encoder_free(e);
        return NULL;
    }
    return e;
}

void ls_aac_encoder_free(ls_aac_encoder *e) {
    if (!e) return;
    avcodec_free_context(&e->codec);
    av_frame_free(&e->frame);
    av_packet_free(&e->packet);
    free(e);
}

int ls_aac_encoder_frame_size(const ls_aac_encoder *e) { return e->codec->frame_size; }
int ls_aac_encoder_delay(const ls_aac_encoder *e) { return e->codec->initial_padding; }
int ls_aac_encoder_bitrate(const ls_aac_encoder *e) { return (int)e->codec->bit_rate; }

int ls_aac_encoder_config(const ls_aac_encoder *e, uint8_t *out, int capacity) {
    int n = e->codec->extradata_size;
    if (!e->codec->extradata || n <= 0 || n > capacity) return -1;
    memcpy(out, e->codec->extradata, (size_t)n);
    return n;
}

int ls_aac_encode(ls_aac_encoder *e, const float *pcm, int frames, uint8_t *out, int capacity, int64_t *pts,
                  char *err, size_t errlen) {
    if (frames != e->codec->frame_size) {
        if (err && errlen) snprintf(err, errlen, "the AAC encoder takes %d frames at a time, not %d", e->codec->frame_size, frames);
        return -1;
    }
    int rc = av_frame_make_writable(e->frame);
    if (rc < 0) {
        describe(err, errlen, "cannot write the audio frame", rc);
        return -1;
    }
    float *left = (float *)e->frame->data[0], *right = (float *)e->frame->data[1];
    for (int i = 0; i < frames; i++) {
        left[i] = pcm[2 * i];
        right[i] = pcm[2 * i + 1];
    }
    e->frame->pts = e->next_pts;
    e->next_pts += frames;
    rc = avcodec_send_frame(e->codec, e->frame);
    if (rc < 0) {
        describe(err, errlen, "AAC encoding failed", rc);
        return -1;
    }
    // One frame in gives at most one access unit out (the first comes out after the encoder's delay).
    rc = avcodec_receive_packet(e->codec, e->packet);
    if (rc == AVERROR(EAGAIN)) return 0;
    if (rc < 0) {
        describe(err, errlen, "AAC encoding failed", rc);
        return -1;
    }
    int n = e->packet->size;
    if (n > capacity) {
        av_packet_unref(e->packet);
        if (err && errlen) snprintf(err, errlen, "AAC access unit of %d bytes is larger than %d", n, capacity);
        return -1;
    }
    memcpy(out, e->packet->data, (size_t)n);
    *pts = e->packet->pts;
    av_packet_unref(e->packet);
    return n;
}
