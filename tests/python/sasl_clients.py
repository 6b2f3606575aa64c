# SASL logins with real Python clients (tests/security_sasl.rs).
#
# usage: sasl_clients.py LIBRARY BOOTSTRAP MECHANISM USER PASSWORD TOPIC COUNT [CA_FILE]
#
# With CA_FILE (confluent only) the clients speak SASL_SSL, trusting that CA.
#
# LIBRARY is kafka-python, confluent or aiokafka. Produces COUNT JSON records to TOPIC
# (seed 004's user-events producer with security settings added), then reads them
# back with a consumer group (seed 004's analytics consumer, same settings), and prints
#   produced N
#   consumed N
# An authentication failure prints "auth-failed: <error>" and exits with status 3.
import asyncio
import json
import sys
import time

library, bootstrap, mechanism, user, password, topic, count = sys.argv[1:8]
count = int(count)
ca_file = sys.argv[8] if len(sys.argv) > 8 else None


def event(i):
    return {'user_id': f'user_{i}', 'action': 'page_view', 'timestamp': time.time()}


def fail(error):
    print(f'auth-failed: {type(error).__name__}: {error}', flush=True)
    sys.exit(3)


def kafka_python():
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError
    security = dict(
        security_protocol='SASL_PLAINTEXT',
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    try:
        producer = KafkaProducer(
            bootstrap_servers=[bootstrap],
            value_serializer=lambda v: json.dumps(v).encode('utf-8'),
            **security,
        )
    except KafkaError as error:
        fail(error)
    for i in range(count):
        producer.send(topic, event(i)).get(timeout=30)
    producer.flush()
    producer.close()
    print(f'produced {count}', flush=True)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=[bootstrap],
        value_deserializer=lambda m: json.loads(m.decode('utf-8')),
        group_id='analytics-group',
        auto_offset_reset='earliest',
        consumer_timeout_ms=20000,
        **security,
    )
    seen = 0
    for message in consumer:
        assert message.value['action'] == 'page_view'
        seen += 1
        if seen == count:
            break
    consumer.close()
    print(f'consumed {seen}', flush=True)


def confluent():
    from confluent_kafka import Consumer, KafkaException, Producer
    security = {
        'bootstrap.servers': bootstrap,
        'security.protocol': 'SASL_PLAINTEXT',
        'sasl.mechanisms': mechanism,
        'sasl.username': user,
        'sasl.password': password,
    }
    if ca_file:
        security['security.protocol'] = 'SASL_SSL'
        security['ssl.ca.location'] = ca_file
    errors = []
    producer = Producer({**security, 'error_cb': errors.append, 'message.timeout.ms': 20000})
    delivered = []
    for i in range(count):
        producer.produce(topic, json.dumps(event(i)).encode(),
                         on_delivery=lambda err, msg: delivered.append(err))
        producer.poll(0)
    producer.flush(30)
    auth = [e for e in errors if 'authentication' in e.str().lower() or 'SASL' in e.str()]
    if auth:
        fail(KafkaException(auth[0]))
    if len(delivered) != count or any(delivered):
        raise SystemExit(f'delivered {len(delivered)} of {count}: {delivered[:3]} {errors[:3]}')
    print(f'produced {count}', flush=True)
    consumer = Consumer({**security, 'group.id': 'analytics-group', 'auto.offset.reset': 'earliest'})
    consumer.subscribe([topic])
    seen = 0
    deadline = time.time() + 30
    while seen < count and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        seen += 1
    consumer.close()
    print(f'consumed {seen}', flush=True)


async def aiokafka_run():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import KafkaError
    security = dict(
        security_protocol='SASL_PLAINTEXT',
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **security)
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        fail(error)
    for i in range(count):
        await producer.send_and_wait(topic, json.dumps(event(i)).encode())
    await producer.stop()
    print(f'produced {count}', flush=True)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id='analytics-group',
                                auto_offset_reset='earliest', **security)
    await consumer.start()
    seen = 0
    try:
        while seen < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
    print(f'consumed {seen}', flush=True)


if library == 'kafka-python':
    kafka_python()
elif library == 'confluent':
    confluent()
elif library == 'aiokafka':
    asyncio.run(aiokafka_run())
else:
    raise SystemExit(f'unknown library {library}')
