# Copied verbatim, unchanged, from the seed document shared/seeds/004_d523e4b5af779d85.txt
# (section "Producer Example", kafka-python). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 and reads the records back. Everything below this header is the seed's code.
from kafka import KafkaProducer
import json
import time

# Create producer
producer = KafkaProducer(
    bootstrap_servers=['localhost:9092'],
    value_serializer=lambda v: json.dumps(v).encode('utf-8')
)

# Send messages
for i in range(100):
    message = {
        'user_id': f'user_{i}',
        'action': 'page_view',
        'timestamp': time.time()
    }
    
    producer.send('user-events', message)
    print(f"Sent message {i}")

producer.flush()
producer.close()
