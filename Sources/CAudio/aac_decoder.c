#include "CAudio.h"

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libswresample/swresample.h>
#include <stdio.h>
#include <string.h>

struct ls_aac_decoder {
    AVCodecContext *codec;
    AVPacket *packet;
    AVFrame *frame;
    SwrContext *resampler;
    // What the resampler was set up for; a decoded frame that differs (HE-AAC's doubled rate appearing, a
    // parametric-stereo upmix, a new configuration) sets it up again.
    int in_rate, in_format, in_channels;
    int last_rate, last_channels, last_samples;
    uint8_t *input;
    size_t input_cap;
};

static void describe(char *err, size_t errlen, const char *what, int code) {
    if (!err || errlen == 0) return;
    char reason[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, reason, sizeof reason);
    snprintf(err, errlen, "%s: %s", what, reason);
}

static void say(char *err, size_t errlen, const char *what) {
    if (err && errlen) snprintf(err, errlen, "%s", what);
}

ls_aac_decoder *ls_aac_decoder_new(const uint8_t *config, size_t config_len, char *err, size_t errlen) {
    // Errors come back through `err`, once per stream in the server's log; libavcodec's own messages about every
    // broken frame would flood stderr.
    av_log_set_level(AV_LOG_QUIET);
    if (!config || config_len < 2 || config_len > 64) {
        say(err, errlen, "AudioSpecificConfig must be 2-64 bytes");
        return NULL;
    }
    const AVCodec *aac = avcodec_find_decoder(AV_CODEC_ID_AAC);
    if (!aac) {
        say(err, errlen, "libavcodec has no AAC decoder");
        return NULL;
    }
    ls_aac_decoder *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->codec = avcodec_alloc_context3(aac);
    d->packet = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->codec || !d->packet || !d->frame) {
        say(err, errlen, "out of memory");
        ls_aac_decoder_free(d);
        return NULL;
    }
    d->codec->extradata = av_mallocz(config_len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!d->codec->extradata) {
        say(err, errlen, "out of memory");
        ls_aac_decoder_free(d);
        return NULL;
    }
    memcpy(d->codec->extradata, config, config_len);
    d->codec->extradata_size = (int)config_len;
    int rc = avcodec_open2(d->codec, aac, NULL);
    if (rc < 0) {
        describe(err, errlen, "the AAC decoder refused the AudioSpecificConfig", rc);
        ls_aac_decoder_free(d);
        return NULL;
    }
    return d;
}

void ls_aac_decoder_free(ls_aac_decoder *d) {
    if (!d) return;
    avcodec_free_context(&d->codec);
    av_packet_free(&d->packet);
    av_frame_free(&d->frame);
    swr_free(&d->resampler);
    av_free(d->input);
    free(d);
}

// Sets the resampler up for `frame`, first draining what the old one held into `out`. Returns frames drained, or -1.
static int configure(ls_aac_decoder *d, const AVFrame *frame, float *out, int capacity, char *err, size_t errlen) {
    int channels = frame->ch_layout.nb_channels;
    if (d->resampler && d->in_rate == frame->sample_rate && d->in_format == frame->format && d->in_channels == channels) return 0;
    int drained = 0;
    if (d->resampler) {
        uint8_t *o[1] = {(uint8_t *)out};
        drained = swr_convert(d->resampler, o, capacity, NULL, 0);
        if (drained < 0) drained = 0;
        swr_free(&d->resampler);
    }
    AVChannelLayout in_layout = {0};
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        av_channel_layout_default(&in_layout, channels);
    } else if (av_channel_layout_copy(&in_layout, &frame->ch_layout) < 0) {
        say(err, errlen, "out of memory");
        return -1;
    }
    AVChannelLayout stereo = AV_CHANNEL_LAYOUT_STEREO;
    int rc = swr_alloc_set_opts2(&d->resampler, &stereo, AV_SAMPLE_FMT_FLT, LS_AUDIO_RATE, &in_layout, frame->format,
                                 frame->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    if (rc < 0) {
        describe(err, errlen, "cannot resample the decoded audio", rc);
        return -1;
    }
    // A mono source goes to both channels at its own level: libswresample's own matrix puts it 3 dB down.
    if (channels == 1) {
        const double both[2] = {1.0, 1.0};
        rc = swr_set_matrix(d->resampler, both, 1);
        if (rc < 0) {
            describe(err, errlen, "cannot resample the decoded audio", rc);
            swr_free(&d->resampler);
            return -1;
        }
    }
    rc = swr_init(d->resampler);
    if (rc < 0) {
        describe(err, errlen, "cannot resample the decoded audio", rc);
        swr_free(&d->resampler);
        return -1;
    }
    d->in_rate = frame->sample_rate;
    d->in_format = frame->format;
    d->in_channels = channels;
    return drained;
}

int ls_aac_decode(ls_aac_decoder *d, const uint8_t *data, size_t len, float *out, int capacity, char *err, size_t errlen) {
    if (!d || !out || capacity <= 0) {
        say(err, errlen, "no decoder or no room for output");
        return -1;
    }
    // An empty packet would tell libavcodec the stream has ended.
    if (!data || len == 0) {
        say(err, errlen, "an empty AAC frame");
        return -1;
    }
    if (len > 1 << 16) {
        say(err, errlen, "an AAC frame over 64 KiB");
        return -1;
    }
    // libavcodec reads up to AV_INPUT_BUFFER_PADDING_SIZE bytes past the end.
    if (d->input_cap < len + AV_INPUT_BUFFER_PADDING_SIZE) {
        av_free(d->input);
        d->input_cap = len + AV_INPUT_BUFFER_PADDING_SIZE;
        d->input = av_malloc(d->input_cap);
        if (!d->input) {
            d->input_cap = 0;
            say(err, errlen, "out of memory");
            return -1;
        }
    }
    memcpy(d->input, data, len);
    memset(d->input + len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    d->packet->data = d->input;
    d->packet->size = (int)len;
    int rc = avcodec_send_packet(d->codec, d->packet);
    d->packet->data = NULL;
    d->packet->size = 0;
    if (rc < 0) {
        describe(err, errlen, "AAC frame not decoded", rc);
        return -1;
    }
    int written = 0;
    for (;;) {
        rc = avcodec_receive_frame(d->codec, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) break;
        if (rc < 0) {
            describe(err, errlen, "AAC frame not decoded", rc);
            return -1;
        }
        int drained = configure(d, d->frame, out + 2 * written, capacity - written, err, errlen);
        if (drained < 0) {
            av_frame_unref(d->frame);
            return -1;
        }
        written += drained;
        d->last_rate = d->frame->sample_rate;
        d->last_channels = d->frame->ch_layout.nb_channels;
        d->last_samples = d->frame->nb_samples;
        if (swr_get_out_samples(d->resampler, d->frame->nb_samples) > capacity - written) {
            av_frame_unref(d->frame);
            say(err, errlen, "an AAC frame decoded to more samples than expected");
            return -1;
        }
        uint8_t *o[1] = {(uint8_t *)(out + 2 * written)};
        int n = swr_convert(d->resampler, o, capacity - written, (const uint8_t **)d->frame->extended_data, d->frame->nb_samples);
        av_frame_unref(d->frame);
        if (n < 0) {
            describe(err, errlen, "cannot resample the decoded audio", n);
            return -1;
        }
        written += n;
    }
    return written;
}

int ls_aac_decoder_input_rate(const ls_aac_decoder *d) { return d ? d->last_rate : 0; }
int ls_aac_decoder_input_channels(const ls_aac_decoder *d) { return d ? d->last_channels : 0; }
int ls_aac_decoder_input_samples(const ls_aac_decoder *d) { return d ? d->last_samples : 0; }

int ls_aac_decoder_delay(const ls_aac_decoder *d) {
    if (!d || !d->resampler) return 0;
    return (int)swr_get_delay(d->resampler, LS_AUDIO_RATE);
}
