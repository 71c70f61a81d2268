#include "PNGCodec.h"
#include <png.h>
int rnn_png_codec_version(void) { return PNG_LIBPNG_VER; }
