#include <png.h>
/* Linked libpng version number, e.g. 10639 for 1.6.39. */
int rnn_png_library_version(void) { return (int)png_access_version_number(); }
