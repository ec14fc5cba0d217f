/* Stop requests from signals (signals.h). */
#include "signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../../core/util/stop.h"

static volatile sig_atomic_t announce_first, seen;

static void say(const char *s) {
    ssize_t w = write(STDERR_FILENO, s, strlen(s)); /* async-signal-safe; a lost line is harmless */
    (void)w;
}

static void on_signal(int sig) {
    if (seen && sig == SIGINT) { /* the second Ctrl-C: the user does not want to wait */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    int first = !seen;
    seen = 1;
    ip_stop_request(sig);
    if (!first || !announce_first) return;
    say("\nipsweep: ");
    say(rn_signal_name(sig));
    say(": saving the running tasks' state and stopping");
    say(sig == SIGINT ? " (Ctrl-C again quits without saving)\n" : "\n");
}

void rn_signals_install(int announce) {
    announce_first = announce;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* nothing waits on a syscall for the signal: the flag is polled */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

const char *rn_signal_name(int sig) {
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "a signal";
    }
}
