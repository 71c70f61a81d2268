/* PNG writing API (see png_write.c). */
