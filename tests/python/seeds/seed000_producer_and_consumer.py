# Copied verbatim, unchanged, from the seed document shared/seeds/000_96fedd260b4298dd.txt
# (section "Example Implementation: Producer and Consumer", confluent-kafka). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 until it printed what it should, then stops it. Everything below this header is the seed's code.
from confluent_kafka import Producer, Consumer

# Create a Kafka producer
producer = Producer({
    'bootstrap.servers': 'localhost:9092',
    'client.id': 'my_producer'
})

# Create a Kafka consumer
consumer = Consumer({
    'bootstrap.servers': 'localhost:9092',
    'group.id': 'my_group',
    'auto.offset.reset': 'earliest'
})

# Subscribe to a topic
consumer.subscribe(['my_topic'])

# Produce some messages
for i in range(10):
    producer.produce('my_topic', value=f'Message {i}'.encode('utf-8'))

# Consume some messages
while True:
    msg = consumer.poll(1.0)
    if msg is None:
        continue
    print(f'Received message: {msg.value().decode("utf-8")}')
