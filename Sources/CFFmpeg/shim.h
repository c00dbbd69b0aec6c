#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/samplefmt.h>
#include <stdarg.h>
#include <stdio.h>

/* What Swift cannot write itself: C macros that are expressions, and the formatting of an
   av_log message (a va_list) into a buffer, with the name of the component that logged it. */

/* AVERROR(EAGAIN), AVERROR_EOF and AVERROR(EPERM) as values. */
static inline int vani_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int vani_averror_eof(void) { return AVERROR_EOF; }
static inline int vani_averror_eperm(void) { return AVERROR(EPERM); }

/* Where av_log lines go: defined in Swift (Sources/Audio/AudioLog.swift, @_cdecl), called with
   the formatted line, its AV_LOG_* level and the logging component's name (or NULL). */
extern void vani_audio_log_line(int level, const char *line, const char *component);

/* av_log's callback: formats the message (Swift cannot take a va_list in a C callback) and hands
   it to Swift. Lines above AV_LOG_VERBOSE are dropped before formatting. */
static inline void vani_av_log_trampoline(void *avcl, int level, const char *fmt, va_list vl) {
    if (level > AV_LOG_VERBOSE || fmt == NULL) return;
    const char *component = NULL;
    if (avcl) {
        const AVClass *cls = *(const AVClass **)avcl;
        if (cls) component = cls->item_name ? cls->item_name(avcl) : cls->class_name;
    }
    char line[1024];
    if (vsnprintf(line, sizeof line, fmt, vl) > 0) vani_audio_log_line(level, line, component);
}

/* Sends every av_log line of the process to `vani_audio_log_line`. */
static inline void vani_install_av_log_callback(void) { av_log_set_callback(vani_av_log_trampoline); }

/* The io_open callback type of AVFormatContext: refuses every nested open, so a playlist or
   reference inside an upload can never make FFmpeg read a local file or a URL. */
static inline int vani_refuse_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url,
                                      int flags, AVDictionary **options) {
    (void)s; (void)pb; (void)url; (void)flags; (void)options;
    return AVERROR(EPERM);
}
static inline void vani_forbid_nested_io(AVFormatContext *s) { s->io_open = vani_refuse_io_open; }
