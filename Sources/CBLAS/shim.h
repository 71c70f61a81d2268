#include <cblas.h>
/* OpenBLAS extensions (declared here too in case cblas.h is another vendor's). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
