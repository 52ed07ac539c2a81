/*
 * goim-bench: server CPU, RSS and PSS from /proc.
 */


#include <gb.h>


/*
 * CPU seconds (utime + stime), VmRSS and Pss summed over the server pids.
 * VmRSS counts a shared page in every worker that touched it; Pss splits
 * it between them, so its sum is the better figure with several workers.
 */

int
gb_server_sample(double *cpu, long *rss_kb, long *pss_kb)
{
    int            i, ok;
    long           kb;
    char           path[64], buf[1024], *p;
    size_t         n;
    FILE          *f;
    unsigned long  ut, st;

    *cpu = 0;
    *rss_kb = 0;
    *pss_kb = 0;
    ok = 0;

    for (i = 0; i < gb.npids; i++) {
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) gb.pids[i]);

        f = fopen(path, "r");
        if (f == NULL) {
            fprintf(stderr, "goim-bench: server pid %d is gone\n",
                    (int) gb.pids[i]);
            continue;
        }

        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';

        /* the command may hold spaces and ')': fields follow the last ')' */
        p = strrchr(buf, ')');

        if (p == NULL
            || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                      "%lu %lu", &ut, &st) != 2)
        {
            continue;
        }

        *cpu += (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);

        snprintf(path, sizeof(path), "/proc/%d/status", (int) gb.pids[i]);

        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }

        while (fgets(buf, sizeof(buf), f)) {
            if (sscanf(buf, "VmRSS: %ld kB", &kb) == 1) {
                *rss_kb += kb;
                break;
            }
        }

        fclose(f);

        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup",
                 (int) gb.pids[i]);

        f = fopen(path, "r");
        if (f) {
            while (fgets(buf, sizeof(buf), f)) {
                if (sscanf(buf, "Pss: %ld kB", &kb) == 1) {
                    *pss_kb += kb;
                    break;
                }
            }

            fclose(f);
        }

        ok++;
    }

    return ok;
}


/* CPU seconds (utime + stime) of one process so far, 0 when gone */

double
gb_pid_cpu(pid_t pid)
{
    char           path[64], buf[1024], *p;
    size_t         n;
    FILE          *f;
    unsigned long  ut, st;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);

    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';

    p = strrchr(buf, ')');

    if (p == NULL
        || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                  "%lu %lu", &ut, &st) != 2)
    {
        return 0;
    }

    return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}
