# Copied verbatim, unchanged, from the seed document shared/seeds/001_d97b5427677ca589.txt
# (section "Full Example Code", Producer, confluent-kafka). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 and reads the records back. Everything below this header is the seed's code.
from confluent_kafka import Producer
import json

conf = {
    'bootstrap.servers': 'localhost:9092',
    'client.id': 'python-producer'
}

producer = Producer(conf)

def delivery_report(err, msg):
    if err is not None:
        print(f"Delivery failed for message: {msg.key()}: {err}")
    else:
        print(f"Message produced: {msg.key()}")

def produce_messages(topic, messages):
    for message in messages:
        producer.produce(topic, key=str(message['key']), value=json.dumps(message), callback=delivery_report)
        producer.poll(1)

messages = [
    {'key': 1, 'value': 'Message 1'},
    {'key': 2, 'value': 'Message 2'},
    {'key': 3, 'value': 'Message 3'}
]

produce_messages('example-topic', messages)
producer.flush()
