/* PNG encoding through libpng. Every setjmp lives in this file; libpng's longjmp never leaves C.
   The image goes to a temporary file next to the target, which is renamed over the target only
   after everything was written and flushed. */
#include "PNGWrite.h"
#include "png_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* State of one encode, owned by the caller of the function that calls setjmp. */
typedef struct {
    FILE *file;
    png_structp png;
    png_infop info;
    rnn_png_messages messages;
    const unsigned short *samples;
    int width, height, color_type, bit_depth, interlace, channels;
    const unsigned char *palette_rgb;
    int palette_count;
    const unsigned char *palette_alpha;
    int alpha_count;
    unsigned char *packed;  /* [height][rowbytes] in PNG byte order */
    png_bytep *rows;
    size_t rowbytes;
} rnn_png_write_state;

/* Channels per pixel for a colour type, 0 when the type is unknown. */
static int rnn_png_type_channels(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    case PNG_COLOR_TYPE_PALETTE: return 1;
    default: return 0;
    }
}

/* Whether PNG allows bit_depth for color_type. */
static int rnn_png_depth_allowed(int color_type, int bit_depth) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
        return bit_depth == 1 || bit_depth == 2 || bit_depth == 4 || bit_depth == 8 || bit_depth == 16;
    case PNG_COLOR_TYPE_PALETTE:
        return bit_depth == 1 || bit_depth == 2 || bit_depth == 4 || bit_depth == 8;
    default:
        return bit_depth == 8 || bit_depth == 16;
    }
}

/* Packs the samples into PNG rows (MSB-first sub-byte packing, big-endian 16-bit). */
static void rnn_png_pack(rnn_png_write_state *s) {
    size_t per_row = (size_t)s->width * (size_t)s->channels;
    for (int y = 0; y < s->height; y++) {
        const unsigned short *src = s->samples + (size_t)y * per_row;
        unsigned char *dst = s->packed + (size_t)y * s->rowbytes;
        s->rows[y] = dst;
        if (s->bit_depth == 16) {
            for (size_t i = 0; i < per_row; i++) {
                dst[2 * i] = (unsigned char)(src[i] >> 8);
                dst[2 * i + 1] = (unsigned char)(src[i] & 0xff);
            }
        } else if (s->bit_depth == 8) {
            for (size_t i = 0; i < per_row; i++) dst[i] = (unsigned char)src[i];
        } else {
            memset(dst, 0, s->rowbytes);
            int per_byte = 8 / s->bit_depth;
            for (size_t i = 0; i < per_row; i++) {
                int shift = 8 - s->bit_depth * (int)(i % (size_t)per_byte + 1);
                dst[i / (size_t)per_byte] |= (unsigned char)(src[i] << shift);
            }
        }
    }
}

/* The only function here that calls setjmp. Returns 0 on success. All state lives in *s. */
static int rnn_png_encode(rnn_png_write_state *s) {
    if (setjmp(png_jmpbuf(s->png))) return 1;
    png_init_io(s->png, s->file);
    png_set_IHDR(s->png, s->info, (png_uint_32)s->width, (png_uint_32)s->height, s->bit_depth,
                 s->color_type, s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[256];
        for (int i = 0; i < s->palette_count; i++) {
            palette[i].red = s->palette_rgb[3 * i];
            palette[i].green = s->palette_rgb[3 * i + 1];
            palette[i].blue = s->palette_rgb[3 * i + 2];
        }
        png_set_PLTE(s->png, s->info, palette, s->palette_count);
        if (s->palette_alpha != NULL && s->alpha_count > 0)
            png_set_tRNS(s->png, s->info, s->palette_alpha, s->alpha_count, NULL);
    }
    png_write_info(s->png, s->info);
    png_write_image(s->png, s->rows);
    png_write_end(s->png, s->info);
    return 0;
}

/* Checks the arguments and every sample; returns 0 or writes the reason into err. */
static int rnn_png_validate(rnn_png_write_state *s, const char *path, char *err, int errlen) {
    if (s->samples == NULL) {
        rnn_png_set_error(err, errlen, path, "no samples (NULL pointer)");
        return 1;
    }
    if (s->width <= 0 || s->height <= 0 || s->width > 1000000 || s->height > 1000000) {
        rnn_png_set_error(err, errlen, path, "invalid image size %dx%d (each side must be 1...1000000)",
                          s->width, s->height);
        return 1;
    }
    if (s->channels == 0) {
        rnn_png_set_error(err, errlen, path, "invalid colour type %d", s->color_type);
        return 1;
    }
    if (!rnn_png_depth_allowed(s->color_type, s->bit_depth)) {
        rnn_png_set_error(err, errlen, path, "bit depth %d is not allowed for colour type %d",
                          s->bit_depth, s->color_type);
        return 1;
    }
    if (s->interlace != 0 && s->interlace != 1) {
        rnn_png_set_error(err, errlen, path, "interlace must be 0 or 1, not %d", s->interlace);
        return 1;
    }
    unsigned max_value = (s->bit_depth == 16) ? 65535u : ((1u << s->bit_depth) - 1u);
    if (s->color_type == PNG_COLOR_TYPE_PALETTE) {
        if (s->palette_rgb == NULL || s->palette_count < 1 || s->palette_count > 256 ||
            s->palette_count > (1 << s->bit_depth)) {
            rnn_png_set_error(err, errlen, path,
                              "palette image needs 1...%d palette entries for bit depth %d, got %d%s",
                              1 << s->bit_depth, s->bit_depth, s->palette_count,
                              s->palette_rgb == NULL ? " (NULL palette)" : "");
            return 1;
        }
        if (s->palette_alpha != NULL && (s->alpha_count < 1 || s->alpha_count > s->palette_count)) {
            rnn_png_set_error(err, errlen, path, "tRNS needs 1...%d alpha entries, got %d",
                              s->palette_count, s->alpha_count);
            return 1;
        }
        max_value = (unsigned)s->palette_count - 1u;
    } else if (s->palette_rgb != NULL || s->palette_alpha != NULL) {
        rnn_png_set_error(err, errlen, path, "a palette was given for non-palette colour type %d",
                          s->color_type);
        return 1;
    }
    size_t count = (size_t)s->width * (size_t)s->height * (size_t)s->channels;
    for (size_t i = 0; i < count; i++) {
        if (s->samples[i] > max_value) {
            size_t pixel = i / (size_t)s->channels;
            rnn_png_set_error(err, errlen, path, "sample %u at x=%zu y=%zu channel %zu exceeds the maximum %u%s",
                              (unsigned)s->samples[i], pixel % (size_t)s->width, pixel / (size_t)s->width,
                              i % (size_t)s->channels, max_value,
                              s->color_type == PNG_COLOR_TYPE_PALETTE ? " (palette index)" : "");
            return 1;
        }
    }
    return 0;
}

int rnn_png_write_file_trns(const char *path, const unsigned short *samples, int width, int height,
                            int color_type, int bit_depth, int interlace,
                            const unsigned char *palette_rgb, int palette_count,
                            const unsigned char *palette_alpha, int alpha_count,
                            char *err, int errlen) {
    if (err != NULL && errlen > 0) err[0] = '\0';
    if (path == NULL || path[0] == '\0') {
        rnn_png_set_error(err, errlen, "(no path)", "empty output path");
        return 1;
    }
    rnn_png_write_state s;
    memset(&s, 0, sizeof s);
    s.samples = samples;
    s.width = width;
    s.height = height;
    s.color_type = color_type;
    s.bit_depth = bit_depth;
    s.interlace = interlace;
    s.channels = rnn_png_type_channels(color_type);
    s.palette_rgb = palette_rgb;
    s.palette_count = palette_count;
    s.palette_alpha = palette_alpha;
    s.alpha_count = alpha_count;
    if (rnn_png_validate(&s, path, err, errlen) != 0) return 1;

    size_t bits_per_row = (size_t)width * (size_t)s.channels * (size_t)bit_depth;
    s.rowbytes = (bits_per_row + 7) / 8;
    if (s.rowbytes > SIZE_MAX / (size_t)height) {
        rnn_png_set_error(err, errlen, path, "image %dx%d too large for memory", width, height);
        return 1;
    }
    s.packed = (unsigned char *)malloc(s.rowbytes * (size_t)height);
    s.rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (s.packed == NULL || s.rows == NULL) {
        free(s.packed);
        free(s.rows);
        rnn_png_set_error(err, errlen, path, "out of memory for a %dx%d image", width, height);
        return 1;
    }
    rnn_png_pack(&s);

    size_t pathlen = strlen(path);
    char *tmp = (char *)malloc(pathlen + 16);
    if (tmp == NULL) {
        free(s.packed);
        free(s.rows);
        rnn_png_set_error(err, errlen, path, "out of memory");
        return 1;
    }
    snprintf(tmp, pathlen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rnn_png_set_error(err, errlen, path, "cannot create temporary file %s: %s", tmp, strerror(errno));
        free(tmp);
        free(s.packed);
        free(s.rows);
        return 1;
    }
    (void)fchmod(fd, 0644);
    s.file = fdopen(fd, "wb");
    if (s.file == NULL) {
        rnn_png_set_error(err, errlen, path, "cannot open temporary file %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        free(s.packed);
        free(s.rows);
        return 1;
    }

    s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s.messages, rnn_png_on_error, rnn_png_on_warning);
    if (s.png != NULL) s.info = png_create_info_struct(s.png);
    int rc;
    if (s.png == NULL || s.info == NULL) {
        snprintf(s.messages.error, sizeof s.messages.error, "cannot initialise libpng");
        rc = 1;
    } else {
        rc = rnn_png_encode(&s);
    }
    png_destroy_write_struct(&s.png, &s.info);
    free(s.packed);
    free(s.rows);

    int saved_errno = 0;
    if (rc == 0 && fflush(s.file) != 0) { rc = 2; saved_errno = errno; }
    if (rc == 0 && fsync(fileno(s.file)) != 0) { rc = 2; saved_errno = errno; }
    if (fclose(s.file) != 0 && rc == 0) { rc = 2; saved_errno = errno; }
    if (rc == 0 && rename(tmp, path) != 0) { rc = 3; saved_errno = errno; }
    if (rc != 0) unlink(tmp);

    if (rc == 1)
        rnn_png_set_error(err, errlen, path, "%s", s.messages.error[0] ? s.messages.error : "libpng write failed");
    else if (rc == 2)
        rnn_png_set_error(err, errlen, path, "cannot write temporary file %s: %s", tmp, strerror(saved_errno));
    else if (rc == 3)
        rnn_png_set_error(err, errlen, path, "cannot rename %s over the target: %s", tmp, strerror(saved_errno));
    free(tmp);
    return rc == 0 ? 0 : 1;
}

int rnn_png_write_file(const char *path, const unsigned short *samples, int width, int height,
                       int color_type, int bit_depth, int interlace,
                       const unsigned char *palette_rgb, int palette_count, char *err, int errlen) {
    return rnn_png_write_file_trns(path, samples, width, height, color_type, bit_depth, interlace,
                                   palette_rgb, palette_count, NULL, 0, err, errlen);
}
