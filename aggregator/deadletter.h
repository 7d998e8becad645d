/*
 * Messages on the likes topic that are not valid events (typed by hand into
 * a console producer, say). They are kept with the reason until the window
 * commits, then written to the dead-letter topic inside the same
 * transaction, so a message is neither lost nor dead-lettered twice.
 *
 * Used by the consumer thread only.
 */
#ifndef AGGREGATOR_DEADLETTER_H
#define AGGREGATOR_DEADLETTER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

typedef struct deadletters deadletters;

deadletters *deadletters_new(void);
void deadletters_free(deadletters *d);

/* Copies the message's key, payload and position with `reason`. Logs and
 * drops it when out of memory. */
void deadletters_add(deadletters *d, const rd_kafka_message_t *msg, const char *reason);

size_t deadletters_count(const deadletters *d);

/* Produces every kept message to `topic` with headers naming the reason,
 * source topic, partition and offset. Returns 0, or -1 when librdkafka
 * refused one. */
int deadletters_produce(deadletters *d, rd_kafka_t *producer, const char *topic);

/* Called once the kept messages' transaction committed: adds them to the
 * running total and logs it. */
void deadletters_committed(deadletters *d, const char *topic);

void deadletters_clear(deadletters *d);

#endif
