# Copied verbatim, unchanged, from the seed document shared/seeds/001_d97b5427677ca589.txt
# (section "Detailed Explanation of Components", 1. Producers, confluent-kafka). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 and reads the records back. Everything below this header is the seed's code.
from confluent_kafka import Producer

conf = {'bootstrap.servers': 'localhost:9092'}
producer = Producer(conf)

def delivery_report(err, msg):
    if err is not None:
        print(f"Message delivery failed: {err}")
    else:
        print(f"Message delivered to {msg.topic()} [{msg.partition()}]")

producer.produce('my_topic', key='key', value='value', callback=delivery_report)
producer.flush()
