# Copied verbatim, unchanged, from the seed document shared/seeds/004_d523e4b5af779d85.txt
# (section "Consumer Example", kafka-python). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 until it printed what it should, then stops it. Everything below this header is the seed's code.
from kafka import KafkaConsumer
import json

# Create consumer
consumer = KafkaConsumer(
    'user-events',
    bootstrap_servers=['localhost:9092'],
    value_deserializer=lambda m: json.loads(m.decode('utf-8')),
    group_id='analytics-group',
    auto_offset_reset='earliest'
)

# Process messages
for message in consumer:
    event = message.value
    print(f"Processing event: {event['action']} for user {event['user_id']}")
    
    # Process the event (store in database, trigger actions, etc.)
    process_user_event(event)
