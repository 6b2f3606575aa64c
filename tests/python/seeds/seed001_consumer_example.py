# Copied verbatim, unchanged, from the seed document shared/seeds/001_d97b5427677ca589.txt
# (section "Kafka Consumer Example", confluent-kafka). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 until it printed what it should, then stops it. Everything below this header is the seed's code.
from confluent_kafka import Consumer, KafkaException

# Configuration settings for Kafka consumer
conf = {
    'bootstrap.servers': 'localhost:9092',  # Kafka broker
    'group.id': 'python-consumer-group',
    'auto.offset.reset': 'earliest'
}

# Create Consumer instance
consumer = Consumer(conf)

# Subscribe to topic
consumer.subscribe(['example-topic'])

# Function to consume messages
def consume_messages():
    try:
        while True:
            # Poll for messages
            msg = consumer.poll(timeout=1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaException._PARTITION_EOF:
                    print(f"End of partition reached {msg.topic()} [{msg.partition()}] at offset {msg.offset()}")
                elif msg.error():
                    raise KafkaException(msg.error())
            else:
                # Process message
                print(f"Received message: {msg.key()}: {msg.value().decode('utf-8')}")
    except KeyboardInterrupt:
        pass
    finally:
        # Close the consumer
        consumer.close()

# Consume messages
consume_messages()
