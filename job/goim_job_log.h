/*
 * goim-job's floor log, logging and allocation (goim_job_log.c): what every
 * other file of the job uses.  No libevent, librdkafka or hiredis.
 */

#ifndef GOIM_JOB_LOG_H
#define GOIM_JOB_LOG_H

#include <stddef.h>


#define JOB_LOG_DEBUG  0
#define JOB_LOG_INFO   1
#define JOB_LOG_WARN   2
#define JOB_LOG_ERROR  3

extern int  job_log_level;

int job_log_parse_level(const char *s);
int job_log_open(const char *path);
void job_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* allocation failures end the process (goim_job_log.c says why) */
void *job_alloc(size_t size);
void *job_realloc(void *p, size_t size);
char *job_strndup(const char *s, size_t len);

#endif /* GOIM_JOB_LOG_H */
