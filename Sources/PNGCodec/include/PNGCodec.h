#ifndef RNN_PNG_CODEC_H
#define RNN_PNG_CODEC_H
/* PNG encode/decode through libpng with setjmp/longjmp kept on the C side.
   Reading API: PNGRead.h. Writing API: PNGWrite.h. */
#include "PNGRead.h"
#include "PNGWrite.h"

/* Linked libpng version number, e.g. 10639 for 1.6.39. */
int rnn_png_library_version(void);
#endif
