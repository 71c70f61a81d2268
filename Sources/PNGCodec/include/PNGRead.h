/* PNG reading API (see png_read.c). */
#ifndef RNN_PNG_READ_H
#define RNN_PNG_READ_H

#ifdef __cplusplus
extern "C" {
#endif

/* Image header of a PNG file.
   channels: after expansion (what rnn_png_read_file delivers): 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
   bit_depth, color_type: as stored in the file (color_type uses libpng's PNG_COLOR_TYPE_* values).
   interlaced: 1 for Adam7, 0 otherwise. */
typedef struct { int width, height, channels, bit_depth, color_type, interlaced; } rnn_png_info;

/* Reads only the header of the PNG at path into *info.
   Returns 0 on success; non-zero with a one-line message ("<path>: <what is wrong>") in err
   (at most errlen bytes including the terminating NUL) on failure. */
int rnn_png_read_info(const char *path, rnn_png_info *info, char *err, int errlen);

/* Decodes to float samples in [0,1], interleaved [height][width][channels], top row first.
   Palette -> RGB (RGBA when tRNS present), grey 1/2/4 bit expanded (value/(2^bits-1)),
   grey or RGB with tRNS -> grey+alpha / RGBA, 16-bit kept at full precision (value/65535),
   interlaced handled. Checks width*height against max_pixels BEFORE allocating anything
   ("image WxH exceeds the limit of N pixels").
   Returns 0 on success; non-zero + message in err on failure (not a PNG / truncated / CRC error /
   too large / ...). On success err holds "" or, when libpng warned, "warning: <text>".
   *out is malloc'ed (NULL on failure); release with rnn_png_free. */
int rnn_png_read_file(const char *path, long max_pixels, rnn_png_info *info, float **out,
                      char *err, int errlen);

/* Releases a buffer returned by rnn_png_read_file (NULL is fine). */
void rnn_png_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
