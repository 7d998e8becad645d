#include "persister.h"
#include "service.h"

int main(void)
{
    return lk_service_main("persister", persister_run);
}
