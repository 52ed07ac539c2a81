
/*
 * goim for nginx: internal (being written).
 */


#include "ngx_goim.h"
