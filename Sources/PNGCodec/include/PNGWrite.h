/* PNG writing API (see png_write.c). */
#ifndef RNN_PNG_WRITE_H
#define RNN_PNG_WRITE_H

#ifdef __cplusplus
extern "C" {
#endif

/* libpng's colour type values, for callers that do not include png.h. */
#define RNN_PNG_GRAY 0
#define RNN_PNG_RGB 2
#define RNN_PNG_PALETTE 3
#define RNN_PNG_GRAY_ALPHA 4
#define RNN_PNG_RGBA 6

/* Writes a PNG. samples: [height][width][channels] as uint16 values in the range of bit_depth
   (palette images: indices below palette_count; channels implied by color_type: 1 grey,
   2 grey+alpha, 3 RGB, 4 RGBA, 1 palette). color_type uses libpng's PNG_COLOR_TYPE_* values;
   bit_depth 1/2/4/8/16 as PNG allows for the type; interlace 0 or 1 (Adam7); palette_rgb:
   palette_count*3 bytes (NULL otherwise). Writes to a temporary file in the same directory then
   renames it over path, so a failed write never leaves a half-written file.
   Returns 0 or non-zero + one-line message ("<path>: <what is wrong>") in err. */
int rnn_png_write_file(const char *path, const unsigned short *samples, int width, int height,
                       int color_type, int bit_depth, int interlace,
                       const unsigned char *palette_rgb, int palette_count, char *err, int errlen);

/* As rnn_png_write_file, plus a tRNS chunk for palette images: palette_alpha holds alpha_count
   (1...palette_count) alpha bytes for the first palette entries (NULL / 0: no tRNS chunk).
   palette_alpha must be NULL for other colour types. */
int rnn_png_write_file_trns(const char *path, const unsigned short *samples, int width, int height,
                            int color_type, int bit_depth, int interlace,
                            const unsigned char *palette_rgb, int palette_count,
                            const unsigned char *palette_alpha, int alpha_count,
                            char *err, int errlen);

#ifdef __cplusplus
}
#endif
#endif
