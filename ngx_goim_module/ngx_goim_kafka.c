
/*
 * goim for nginx: kafka (being written).
 */


#include "ngx_goim.h"
