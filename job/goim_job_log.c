/*
 * goim-job logging: timestamped lines on stderr or in the log file, which
 * SIGHUP reopens (job_log_open again) after logrotate moved it.  Only the
 * main thread logs: librdkafka's own lines come through its log queue.
 * Allocation failures end the process: the consumer group then hands the
 * partitions on, and nothing past the stored offsets was acknowledged.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "goim_job_log.h"


int  job_log_level = JOB_LOG_INFO;

static FILE        *job_log_file;
static const char  *job_log_names[] = { "debug", "info", "warn", "error" };


int
job_log_parse_level(const char *s)
{
    int  i;

    for (i = 0; i < 4; i++) {
        if (strcmp(s, job_log_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


/* path NULL: stderr.  On failure the previous destination stays. */
int
job_log_open(const char *path)
{
    FILE  *f;

    if (path == NULL) {
        return 0;
    }

    f = fopen(path, "a");
    if (f == NULL) {
        job_log(JOB_LOG_ERROR, "cannot open log file \"%s\": %s", path,
                strerror(errno));
        return -1;
    }

    setvbuf(f, NULL, _IOLBF, 0);

    if (job_log_file != NULL) {
        fclose(job_log_file);
    }

    job_log_file = f;

    return 0;
}


void
job_log(int level, const char *fmt, ...)
{
    FILE            *out;
    va_list          args;
    struct tm        tm;
    struct timeval   tv;

    if (level < job_log_level) {
        return;
    }

    out = job_log_file ? job_log_file : stderr;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);

    fprintf(out, "%04d/%02d/%02d %02d:%02d:%02d.%03d [%s] ",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, (int) (tv.tv_usec / 1000),
            job_log_names[level]);

    va_start(args, fmt);
    vfprintf(out, fmt, args);
    va_end(args);

    fputc('\n', out);
    fflush(out);
}


void *
job_alloc(size_t size)
{
    void  *p;

    p = calloc(1, size);
    if (p == NULL) {
        job_log(JOB_LOG_ERROR, "out of memory (%zu bytes)", size);
        abort();
    }

    return p;
}


void *
job_realloc(void *p, size_t size)
{
    p = realloc(p, size);
    if (p == NULL) {
        job_log(JOB_LOG_ERROR, "out of memory (%zu bytes)", size);
        abort();
    }

    return p;
}


char *
job_strndup(const char *s, size_t len)
{
    char  *p;

    p = job_alloc(len + 1);
    memcpy(p, s, len);

    return p;
}
