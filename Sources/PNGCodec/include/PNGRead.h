/* PNG reading API (see png_read.c). */
