#include "aggregator.h"
#include "service.h"

int main(void)
{
    return lk_service_main("aggregator", aggregator_run);
}
