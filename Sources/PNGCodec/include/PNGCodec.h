#ifndef RNN_PNG_CODEC_H
#define RNN_PNG_CODEC_H
/* PNG encode/decode through libpng with setjmp/longjmp kept on the C side.
   Reading API: PNGRead.h. Writing API: PNGWrite.h. */
#include "PNGRead.h"
#include "PNGWrite.h"
#endif
