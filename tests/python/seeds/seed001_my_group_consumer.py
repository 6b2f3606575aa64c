# Copied verbatim, unchanged, from the seed document shared/seeds/001_d97b5427677ca589.txt
# (section "Detailed Explanation of Components", 2. Consumers, confluent-kafka). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 until it printed what it should, then stops it. Everything below this header is the seed's code.
from confluent_kafka import Consumer, KafkaException

conf = {
    'bootstrap.servers': 'localhost:9092',
    'group.id': 'my_group',
    'auto.offset.reset': 'earliest'
}
consumer = Consumer(conf)
consumer.subscribe(['my_topic'])

try:
    while True:
        msg = consumer.poll(timeout=1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaException._PARTITION_EOF:
                continue
            else:
                print(f"Error: {msg.error()}")
        else:
            print(f"Received message: {msg.value().decode('utf-8')}")
finally:
    consumer.close()
