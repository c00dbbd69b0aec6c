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

/* Formats one av_log call into `line` (NUL-terminated, cut at `size`); `*component` is the
   logging context's item name ("mp3float", "matroska,webm", ...) or NULL. */
static inline int vani_av_log_format(void *avcl, const char *fmt, va_list vl, char *line, int size,
                                     const char **component) {
    *component = NULL;
    if (avcl) {
        const AVClass *cls = *(const AVClass **)avcl;
        if (cls) *component = cls->item_name ? cls->item_name(avcl) : cls->class_name;
    }
    return vsnprintf(line, (size_t)size, fmt, vl);
}

/* The io_open callback type of AVFormatContext: refuses every nested open, so a playlist or
   reference inside an upload can never make FFmpeg read a local file or a URL. */
static inline int vani_refuse_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url,
                                      int flags, AVDictionary **options) {
    (void)s; (void)pb; (void)url; (void)flags; (void)options;
    return AVERROR(EPERM);
}
static inline void vani_forbid_nested_io(AVFormatContext *s) { s->io_open = vani_refuse_io_open; }
