#ifndef RNN_PNG_CODEC_H
#define RNN_PNG_CODEC_H
/* Placeholder; the codec API is defined in png_codec.c. */
int rnn_png_codec_version(void);
#endif
