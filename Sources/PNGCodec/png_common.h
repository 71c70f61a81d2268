/* Internal helpers shared by png_read.c and png_write.c (not part of the public API). */
#ifndef RNN_PNG_COMMON_H
#define RNN_PNG_COMMON_H

#include <png.h>
#include <stdarg.h>
#include <stdio.h>

/* Messages from libpng's error and warning callbacks; the jump back happens in C only. */
typedef struct {
    char error[256];
    char warning[256];
} rnn_png_messages;

/* Writes "<path>: <formatted text>" into err (NUL-terminated, at most errlen bytes). */
static inline void rnn_png_set_error(char *err, int errlen, const char *path, const char *fmt, ...) {
    if (err == NULL || errlen <= 0) return;
    char text[384];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    snprintf(err, (size_t)errlen, "%s: %s", path ? path : "(null path)", text);
}

/* libpng error callback: keeps the message and jumps back to the setjmp in this C library. */
static inline void rnn_png_on_error(png_structp png, png_const_charp msg) {
    rnn_png_messages *m = (rnn_png_messages *)png_get_error_ptr(png);
    if (m != NULL) snprintf(m->error, sizeof m->error, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

/* libpng warning callback: keeps the last warning. */
static inline void rnn_png_on_warning(png_structp png, png_const_charp msg) {
    rnn_png_messages *m = (rnn_png_messages *)png_get_error_ptr(png);
    if (m != NULL) snprintf(m->warning, sizeof m->warning, "%s", msg ? msg : "unknown libpng warning");
}

#endif
