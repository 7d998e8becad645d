#include "service.h"

#include <string.h>

#include "log.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void install_signal_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int lk_service_main(const char *component, lk_service_run_fn run)
{
    lk_log_init(component);

    lk_config cfg;
    char err[256];
    if (lk_config_load(&cfg, 0, err, sizeof(err)) != 0) {
        lk_log_error("configuration refused: %s; exiting", err);
        return 2;
    }
    install_signal_handlers();

    int rc = run(&cfg, &stop_requested);
    lk_log_info("stopped%s", rc == 0 ? "" : " after an unrecoverable error");
    return rc == 0 ? 0 : 1;
}
