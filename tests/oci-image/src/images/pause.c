/*
 * The sandbox ("pause") process of a pod: it only has to exist, so that the pod's namespaces
 * have an owner, and to reap the orphans that end up with it as PID 1. Kubernetes' own pause
 * image does the same; this one is ours so that the e2e node needs no registry.
 *
 * TERM and INT end it with status 0 (the runtime stops sandboxes with TERM); every other
 * signal is blocked, so nothing but the runtime's KILL can make it exit unexpectedly.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "unknown"
#endif

static void quit(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "-v") == 0) {
        printf("pause (cratedb-restore-e2e) %s\n", VERSION);
        return 0;
    }

    sigset_t blocked;
    sigfillset(&blocked);
    sigdelset(&blocked, SIGTERM);
    sigdelset(&blocked, SIGINT);
    sigdelset(&blocked, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &blocked, NULL) != 0) return 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = quit;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return 2;
    sa.sa_handler = reap;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGCHLD, &sa, NULL) != 0) return 3;

    for (;;) pause();
}
