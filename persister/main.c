#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "persister.h"
#include "config.h"
#include "log.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

int main(void)
{
    lk_log_init("persister");

    lk_config cfg;
    char err[256];
    if (lk_config_load(&cfg, 0, err, sizeof(err)) != 0) {
        lk_log_error("configuration refused: %s; exiting", err);
        return 2;
    }

    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = persister_run(&cfg, &stop_requested);
    lk_log_info("stopped%s", rc == 0 ? "" : " after an unrecoverable error");
    return rc == 0 ? 0 : 1;
}
