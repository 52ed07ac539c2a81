
/*
 * goim for nginx: the worker's io_uring (goim_io_uring), which takes a
 * slice of the write list's sends to the kernel in one system call.
 *
 * A system call's entry and exit cost about 1 us on a virtual machine
 * with page-table isolation, a fifth of a small write() to loopback:
 * one call per slice of 512 sockets takes most of that off a fan-out.
 *
 * Every send is made with MSG_DONTWAIT: the kernel tries it at once
 * and answers -EAGAIN rather than waiting for room in the socket, so
 * each one completes before io_uring_enter() returns and the worker
 * never blocks.  Where the kernel refuses io_uring (too old, or a
 * seccomp profile), the worker logs why and writes with send().
 */


#include "ngx_goim_connection.h"

#include <liburing.h>


static struct io_uring  ngx_goim_ring;
static ngx_uint_t       ngx_goim_ring_up;
static ngx_uint_t       ngx_goim_ring_queued;


void
ngx_goim_uring_init(ngx_cycle_t *cycle, ngx_uint_t entries)
{
    int                     rc;
    struct io_uring_params  p;

    ngx_memzero(&p, sizeof(struct io_uring_params));

    /* a send that fails does not stop the ones after it (Linux 5.18) */
    p.flags = IORING_SETUP_SUBMIT_ALL;

    rc = io_uring_queue_init_params((unsigned) entries, &ngx_goim_ring, &p);

    if (rc < 0) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, -rc,
                      "goim: io_uring unavailable, writes use send()");
        return;
    }

    ngx_goim_ring_up = 1;
    ngx_goim_ring_queued = 0;
}


void
ngx_goim_uring_exit(void)
{
    if (ngx_goim_ring_up) {
        io_uring_queue_exit(&ngx_goim_ring);
        ngx_goim_ring_up = 0;
    }
}


ngx_uint_t
ngx_goim_uring_ready(void)
{
    return ngx_goim_ring_up;
}


/*
 * Queues a send of iov[0..niov) on fd, answered under number slot; mh
 * is the caller's and, as iov, must live until ngx_goim_uring_submit().
 * The caller queues at most the ring's entries between two submits.
 */

void
ngx_goim_uring_send(ngx_socket_t fd, struct msghdr *mh, struct iovec *iov,
    ngx_uint_t niov, ngx_uint_t slot)
{
    struct io_uring_sqe  *sqe;

    sqe = io_uring_get_sqe(&ngx_goim_ring);

    if (niov == 1) {
        /* one frame, the usual case: no message header to copy in */
        io_uring_prep_send(sqe, fd, iov[0].iov_base, iov[0].iov_len,
                           MSG_DONTWAIT|MSG_NOSIGNAL);

    } else {
        ngx_memzero(mh, sizeof(struct msghdr));
        mh->msg_iov = iov;
        mh->msg_iovlen = niov;

        io_uring_prep_sendmsg(sqe, fd, mh, MSG_DONTWAIT|MSG_NOSIGNAL);
    }

    io_uring_sqe_set_data64(sqe, slot);
    ngx_goim_ring_queued++;
}


/*
 * Sends what was queued, in one call, and puts each send's result in
 * res[slot]: bytes written, or -errno.  NGX_ERROR when the kernel took
 * the sends but did not answer all of them: the results it did not
 * give are left at -ECANCELED, and the ring is not used again.
 */

ngx_int_t
ngx_goim_uring_submit(ngx_log_t *log, int *res)
{
    int                   rc;
    unsigned              head, seen;
    ngx_uint_t            want, got, tries;
    struct io_uring_cqe  *cqe;

    want = ngx_goim_ring_queued;
    ngx_goim_ring_queued = 0;
    got = 0;

    for (tries = 0; got < want && tries < 8; tries++) {

        rc = io_uring_submit_and_wait(&ngx_goim_ring, (unsigned) (want - got));

        if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
            ngx_log_error(NGX_LOG_ALERT, log, -rc,
                          "goim: io_uring_submit_and_wait() failed");
            break;
        }

        seen = 0;

        io_uring_for_each_cqe(&ngx_goim_ring, head, cqe) {
            res[io_uring_cqe_get_data64(cqe)] = cqe->res;
            seen++;
        }

        io_uring_cq_advance(&ngx_goim_ring, seen);
        got += seen;
    }

    if (got == want) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "goim: io_uring answered %ui of %ui sends, "
                  "writes use send() from now on", got, want);

    ngx_goim_uring_exit();

    return NGX_ERROR;
}
