/*
 * goim-bench: clocks and the latency histogram.
 */


#include <gb.h>


int64_t
gb_mono_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * GB_SEC + ts.tv_nsec / 1000;
}


int64_t
gb_real_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * GB_SEC + ts.tv_nsec / 1000;
}


void
gb_hist_add(gb_hist_t *h, uint64_t v)
{
    size_t    i;
    unsigned  shift;

    if (v < 2 * GB_HIST_SUB) {
        i = (size_t) v;

    } else {
        /* v >> shift is in [GB_HIST_SUB, 2 * GB_HIST_SUB) */
        shift = 63 - __builtin_clzll(v) - GB_HIST_SUB_BITS;
        i = 2 * GB_HIST_SUB + (shift - 1) * GB_HIST_SUB
            + (size_t) ((v >> shift) - GB_HIST_SUB);

        if (i >= GB_HIST_BUCKETS) {
            i = GB_HIST_BUCKETS - 1;
        }
    }

    h->b[i]++;
    h->count++;
    h->sum += v;

    if (v > h->max) {
        h->max = v;
    }
}


void
gb_hist_merge(gb_hist_t *dst, const gb_hist_t *src)
{
    size_t  i;

    for (i = 0; i < GB_HIST_BUCKETS; i++) {
        dst->b[i] += src->b[i];
    }

    dst->count += src->count;
    dst->sum += src->sum;

    if (src->max > dst->max) {
        dst->max = src->max;
    }
}


/* the q-quantile in ms: the middle of its bucket, at most the maximum */

double
gb_hist_ms(const gb_hist_t *h, double q)
{
    size_t    i;
    unsigned  shift;
    uint64_t  rank, seen, v;

    if (h->count == 0) {
        return 0;
    }

    rank = (uint64_t) (q * (double) h->count);
    if (rank == 0) {
        rank = 1;
    }

    seen = 0;
    v = h->max;

    for (i = 0; i < GB_HIST_BUCKETS; i++) {
        seen += h->b[i];

        if (seen >= rank) {
            if (i < 2 * GB_HIST_SUB) {
                v = i;

            } else {
                shift = (unsigned) ((i - 2 * GB_HIST_SUB) / GB_HIST_SUB + 1);
                v = (((i - 2 * GB_HIST_SUB) % GB_HIST_SUB + GB_HIST_SUB)
                     << shift) + ((1ULL << shift) >> 1);
            }

            break;
        }
    }

    if (v > h->max) {
        v = h->max;
    }

    return (double) v / 1000.0;
}
