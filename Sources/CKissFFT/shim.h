#define kiss_fft_scalar float
#include <kissfft/kiss_fft.h>
#include <kissfft/kiss_fftr.h>
