# Copied verbatim, unchanged, from the seed document shared/seeds/000_96fedd260b4298dd.txt
# (section "Example Use Case: Real-Time Analytics", kafka-python producer). tests/seeds.rs runs it against a real odradek broker on
# localhost:9092 and reads the records back. Everything below this header is the seed's code.
from kafka import KafkaProducer

# Create a Kafka producer
producer = KafkaProducer(bootstrap_servers='localhost:9092')

# Define a function to send data to Kafka
def send_data(data):
    producer.send('uber_data', value=data)

# Send some example data to Kafka
send_data(b'{"location": "San Francisco", "ride_request": true}')
send_data(b'{"location": "New York", "driver_availability": 10}')
