/* PNG decoding through libpng. Every setjmp lives in this file; libpng's longjmp never leaves C. */
#include "PNGRead.h"
#include "png_common.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* State of one decode, owned by the caller of the function that calls setjmp, so that nothing
   the jump skips over is an automatic variable of that function. */
typedef struct {
    FILE *file;
    png_structp png;
    png_infop info;
    rnn_png_messages messages;
    int truncated;          /* the read callback hit end of file */
    long max_pixels;        /* < 0: header only */
    int too_large;          /* width*height above max_pixels */
    unsigned char *raw;     /* transformed rows, [height][rowbytes] */
    png_bytep *rows;        /* row pointers into raw */
    float *samples;         /* result, [height][width][channels] */
    rnn_png_info header;
} rnn_png_read_state;

/* Read callback: like libpng's default, but tells a truncated file from an I/O error. */
static void rnn_png_read_data(png_structp png, png_bytep data, size_t length) {
    rnn_png_read_state *s = (rnn_png_read_state *)png_get_io_ptr(png);
    size_t got = fread(data, 1, length, s->file);
    if (got != length) {
        if (feof(s->file)) {
            s->truncated = 1;
            png_error(png, "unexpected end of file (truncated PNG)");
        }
        png_error(png, "read error");
    }
}

/* Channels delivered after expansion for a colour type, given whether a tRNS chunk exists. */
static int rnn_png_expanded_channels(int color_type, int has_trns) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return has_trns ? 2 : 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return has_trns ? 4 : 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    case PNG_COLOR_TYPE_PALETTE: return has_trns ? 4 : 3;
    default: return 0;
    }
}

/* The only function here that calls setjmp. Returns 0 on success. All state lives in *s. */
static int rnn_png_decode(rnn_png_read_state *s) {
    if (setjmp(png_jmpbuf(s->png))) return 1;

    png_set_read_fn(s->png, s, rnn_png_read_data);
    png_set_sig_bytes(s->png, 8);
    png_read_info(s->png, s->info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(s->png, s->info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    int has_trns = png_get_valid(s->png, s->info, PNG_INFO_tRNS) != 0;
    s->header.width = (int)width;
    s->header.height = (int)height;
    s->header.bit_depth = bit_depth;
    s->header.color_type = color_type;
    s->header.interlaced = interlace != PNG_INTERLACE_NONE;
    s->header.channels = rnn_png_expanded_channels(color_type, has_trns);
    if (s->max_pixels < 0) return 0;

    /* Size check before any image buffer exists. */
    if ((unsigned long long)width * (unsigned long long)height > (unsigned long long)s->max_pixels) {
        s->too_large = 1;
        return 1;
    }

    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
    if (has_trns) png_set_tRNS_to_alpha(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);

    int channels = (int)png_get_channels(s->png, s->info);
    int out_depth = (int)png_get_bit_depth(s->png, s->info);
    size_t rowbytes = png_get_rowbytes(s->png, s->info);
    if (channels != s->header.channels || (out_depth != 8 && out_depth != 16) ||
        rowbytes != (size_t)width * (size_t)channels * (size_t)(out_depth / 8)) {
        snprintf(s->messages.error, sizeof s->messages.error,
                 "unsupported pixel layout after expansion (%d channels, %d bits)", channels, out_depth);
        return 1;
    }
    size_t count = (size_t)width * (size_t)height * (size_t)channels;
    if (height > 0 && rowbytes > SIZE_MAX / height) {
        snprintf(s->messages.error, sizeof s->messages.error, "image too large for memory");
        return 1;
    }
    s->raw = (unsigned char *)malloc(rowbytes * height > 0 ? rowbytes * height : 1);
    s->rows = (png_bytep *)malloc(sizeof(png_bytep) * (height > 0 ? height : 1));
    s->samples = (float *)malloc(sizeof(float) * (count > 0 ? count : 1));
    if (s->raw == NULL || s->rows == NULL || s->samples == NULL) {
        snprintf(s->messages.error, sizeof s->messages.error, "out of memory for a %ux%u image",
                 (unsigned)width, (unsigned)height);
        return 1;
    }
    for (png_uint_32 y = 0; y < height; y++) s->rows[y] = s->raw + (size_t)y * rowbytes;
    png_read_image(s->png, s->rows);
    png_read_end(s->png, NULL);

    if (out_depth == 8) {
        for (size_t i = 0; i < count; i++) s->samples[i] = (float)s->raw[i] / 255.0f;
    } else {
        for (size_t i = 0; i < count; i++) {
            unsigned v = ((unsigned)s->raw[2 * i] << 8) | (unsigned)s->raw[2 * i + 1];
            s->samples[i] = (float)v / 65535.0f;
        }
    }
    return 0;
}

/* Shared entry: max_pixels < 0 reads the header only. */
static int rnn_png_read_common(const char *path, long max_pixels, rnn_png_info *info, float **out,
                               char *err, int errlen) {
    if (err != NULL && errlen > 0) err[0] = '\0';
    if (out != NULL) *out = NULL;
    if (path == NULL || info == NULL || (max_pixels >= 0 && out == NULL)) {
        rnn_png_set_error(err, errlen, path, "invalid arguments (NULL pointer)");
        return 1;
    }
    memset(info, 0, sizeof *info);

    rnn_png_read_state s;
    memset(&s, 0, sizeof s);
    s.max_pixels = max_pixels;
    s.file = fopen(path, "rb");
    if (s.file == NULL) {
        rnn_png_set_error(err, errlen, path, "cannot open file: %s", strerror(errno));
        return 1;
    }
    unsigned char sig[8];
    size_t got = fread(sig, 1, 8, s.file);
    if (got < 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(s.file);
        rnn_png_set_error(err, errlen, path, got < 8 && got > 0 && png_sig_cmp(sig, 0, got) == 0
                              ? "unexpected end of file (truncated PNG signature)"
                              : "not a PNG file (bad signature)");
        return 1;
    }
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s.messages, rnn_png_on_error, rnn_png_on_warning);
    if (s.png != NULL) s.info = png_create_info_struct(s.png);
    int rc;
    if (s.png == NULL || s.info == NULL) {
        snprintf(s.messages.error, sizeof s.messages.error, "cannot initialise libpng");
        rc = 1;
    } else {
        rc = rnn_png_decode(&s);
    }
    png_destroy_read_struct(&s.png, &s.info, NULL);
    fclose(s.file);
    free(s.raw);
    free(s.rows);

    *info = s.header;
    if (rc != 0) {
        free(s.samples);
        if (s.too_large)
            rnn_png_set_error(err, errlen, path, "image %dx%d exceeds the limit of %ld pixels",
                              s.header.width, s.header.height, max_pixels);
        else
            rnn_png_set_error(err, errlen, path, "%s", s.messages.error[0] ? s.messages.error : "invalid PNG");
        return 1;
    }
    if (s.messages.warning[0] != '\0' && err != NULL && errlen > 0)
        snprintf(err, (size_t)errlen, "warning: %s", s.messages.warning);
    if (out != NULL) *out = s.samples;
    else free(s.samples);
    return 0;
}

int rnn_png_read_info(const char *path, rnn_png_info *info, char *err, int errlen) {
    return rnn_png_read_common(path, -1, info, NULL, err, errlen);
}

int rnn_png_read_file(const char *path, long max_pixels, rnn_png_info *info, float **out,
                      char *err, int errlen) {
    if (max_pixels < 0) max_pixels = 0;
    return rnn_png_read_common(path, max_pixels, info, out, err, errlen);
}

void rnn_png_free(void *p) { free(p); }
