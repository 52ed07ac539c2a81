
/*
 * goim for nginx, floor "transport": how goim packets travel on a
 * client connection.  TCP: a plain stream of packets (the stream
 * module's goim_tcp); WebSocket: one packet per message after an HTTP
 * upgrade (goim_websocket).  Each hands its channels a read and a
 * finalize function (ngx_goim_transport_t).
 */

#ifndef _NGX_GOIM_TRANSPORT_H_INCLUDED_
#define _NGX_GOIM_TRANSPORT_H_INCLUDED_


#include "ngx_goim_connection.h"


#ifdef _NGX_STREAM_H_INCLUDED_
/* the content handler of a goim_tcp server */
void ngx_goim_tcp_handler(ngx_stream_session_t *s);
#endif

#ifdef _NGX_HTTP_H_INCLUDED_
/* the content handler of a goim_websocket location */
ngx_int_t ngx_goim_ws_handler(ngx_http_request_t *r);
#endif


#endif /* _NGX_GOIM_TRANSPORT_H_INCLUDED_ */
