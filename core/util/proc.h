/* The process's clock and memory, for timings and benchmark figures: one
 * home instead of a copy in every file that times something. */
#ifndef IP_PROC_H
#define IP_PROC_H

/* Seconds on the monotonic clock (differences only: not wall time). */
double ip_now_s(void);

/* Peak resident set size of this process so far, in MiB. */
double ip_peak_rss_mb(void);

#endif
