# Copied verbatim, unchanged, from the seed document shared/seeds/001_d97b5427677ca589.txt
# (section "Kafka Producer Example", confluent-kafka). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 and reads the records back. Everything below this header is the seed's code.
from confluent_kafka import Producer
import json

# Configuration settings for Kafka producer
conf = {
    'bootstrap.servers': 'localhost:9092',  # Kafka broker
    'client.id': 'python-producer'
}

# Create Producer instance
producer = Producer(conf)

# Delivery report callback
def delivery_report(err, msg):
    if err is not None:
        print(f"Delivery failed for message: {msg.key()}: {err}")
    else:
        print(f"Message produced: {msg.key()}")

# Function to produce messages
def produce_messages(topic, messages):
    for message in messages:
        # Produce message
        producer.produce(topic, key=str(message['key']), value=json.dumps(message), callback=delivery_report)
        producer.poll(1)  # Poll for delivery report

# Example messages to send to Kafka
messages = [
    {'key': 1, 'value': 'Message 1'},
    {'key': 2, 'value': 'Message 2'},
    {'key': 3, 'value': 'Message 3'}
]

# Produce messages to 'example-topic'
produce_messages('example-topic', messages)

# Wait for all messages to be delivered
producer.flush()
