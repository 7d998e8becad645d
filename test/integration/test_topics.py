"""The topics as operators meet them with Kafka's own tools: a message typed
by hand that is no event goes to the dead-letter topic with the reason, and
a post's events land on one partition whether ingest or the Java console
producer wrote them."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import check_equal, main, test  # noqa: E402
import likes_client as lc  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BROKERS = os.environ.get("LIKES_KAFKA_BROKERS", "127.0.0.1:19092")
KAFKA_TOOL = os.path.join(ROOT, "scripts", "kafka-tool.sh")

api = lc.Api()
author = api.create_user("topics")


def new_post():
    reply = api.create_post(author["token"], os.path.join(ROOT, "test", "data", "images",
                                                           "rocket.jpg"))
    check_equal(201, reply.status, "upload status")
    return reply.json()["id"]


def console_produce(topic, lines):
    """Types `lines` ("key<TAB>value") into Kafka's console producer."""
    subprocess.run([KAFKA_TOOL, "kafka.tools.ConsoleProducer", "--bootstrap-server", BROKERS,
                    "--topic", topic, "--property", "parse.key=true",
                    "--property", "key.separator=\t"],
                   input="".join(line + "\n" for line in lines), text=True, check=True,
                   capture_output=True, timeout=120)


def end_offsets(topic):
    out = subprocess.run([KAFKA_TOOL, "org.apache.kafka.tools.GetOffsetShell",
                          "--bootstrap-server", BROKERS, "--topic", topic],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    offsets = {}
    for line in out.split():
        _, partition, offset = line.rsplit(":", 2)
        offsets[int(partition)] = int(offset)
    return offsets


def read_dead_letters(count):
    out = subprocess.run([KAFKA_TOOL, "org.apache.kafka.tools.consumer.ConsoleConsumer",
                          "--bootstrap-server", BROKERS, "--topic", "likes-dlq",
                          "--from-beginning", "--isolation-level", "read_committed",
                          "--max-messages", str(count), "--timeout-ms", "60000",
                          "--property", "print.headers=true", "--property", "print.key=true",
                          "--property", "headers.separator=|"],
                         capture_output=True, text=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines() if line]


@test
def a_message_that_is_no_event_goes_to_the_dead_letter_topic_with_its_reason():
    post = new_post()
    console_produce("likes", ["%d\tnot json" % post, "%d\t{\"type\":\"love\",\"user_id\":1,"
                                                     "\"post_id\":%d}" % (post, post)])

    letters = read_dead_letters(2)
    check_equal(2, len(letters), "dead letters read")
    headers = [dict(h.split(":", 1) for h in letter[0].split("|")) for letter in letters]
    check_equal([str(post), str(post)], [letter[1] for letter in letters], "keys")
    values = sorted(letter[2] for letter in letters)
    check_equal(sorted(["not json", '{"type":"love","user_id":1,"post_id":%d}' % post]), values,
                "values, as they were typed")
    reasons = sorted(h["reason"] for h in headers)
    check_equal(["\"type\" must be \"like\" or \"unlike\"", "unexpected character at byte 0"],
                reasons, "reasons")
    check_equal({"likes"}, {h["source_topic"] for h in headers}, "source topic")

    # The aggregator moved on: a like after them counts.
    token = lc.mint_tokens([8_100_001])[8_100_001]
    check_equal(202, api.like(token, post).status, "like status")
    redis, pg = lc.wait_for_counts({post: 1}, timeout=60)
    check_equal({post: 1}, redis, "count in redis")
    check_equal({post: 1}, pg, "count in postgres")


@test
def the_java_console_producer_puts_a_post_on_the_partition_ingest_uses():
    post = new_post()
    token = lc.mint_tokens([8_200_001])[8_200_001]
    reply = api.like(token, post)
    check_equal(202, reply.status, "like status")
    ingest_partition = reply.json()["partition"]

    before = end_offsets("likes")
    console_produce("likes", ['%d\t{"type":"like","user_id":8200002,"post_id":%d}'
                             % (post, post)])
    after = end_offsets("likes")
    grown = [p for p in after if after[p] != before.get(p)]
    check_equal([ingest_partition], grown, "partition the console producer wrote to")

    redis, pg = lc.wait_for_counts({post: 2}, timeout=60)
    check_equal({post: 2}, redis, "count in redis, both likes")
    check_equal({post: 2}, pg, "count in postgres, both likes")


if __name__ == "__main__":
    main()
