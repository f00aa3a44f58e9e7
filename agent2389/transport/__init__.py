"""agent2389's Celery transport: kombu's Redis transport with what losing no task needs.

- ``redis_transport``: the transport and its channel (survives a Redis restart, parks queued messages,
  fetches a backlog in batches, reuses one client per connection pool);
- ``qos``: acknowledgements batched per turn of the event loop, unparking on receipt;
- ``parking``: the copy of every queued task that brings back one taken by a worker that died;
- ``fetching``: the batch fetch (pop and record as unacknowledged in one Lua step);
- ``leases``: lease renewal, so a short visibility timeout never takes a task from a live worker;
- ``layout``: kombu's key layout, for readers outside the transport (queue depths, leases).

kombu has no public interface for any of this, so this package relies on names and a data layout that
kombu and Celery do not promise to keep. Every one of them is listed below, and only this package (and
the two Celery hooks named last) uses them. celery and kombu are pinned to the minor versions the tests
ran with (pyproject.toml, constraints.txt), and tests/agent2389/transport/test_contract.py checks each
name and signature, so an upgrade that changes one fails loudly instead of changing delivery silently.

kombu.transport.redis.QoS (qos.py)
  append(message, delivery_tag)        overridden: record unacked and unpark in one transaction
  ack(delivery_tag)                    overridden: deferred to the end of the event loop's turn
  restore_visible(start, num, interval), _vrestore_count
                                       extended: every restore sweep also sweeps parked messages
  pipe_or_acquire(pipe, client), _remove_from_indices(delivery_tag, pipe)
                                       the batched acks write what kombu's ack writes
  unacked_key, unacked_index_key, channel
kombu.transport.virtual.QoS
  ack(delivery_tag), append(message, delivery_tag)
                                       the in-memory half of kombu's own ack and append
  can_consume_max_estimate()           how many more messages the prefetch allows (batch fetch)
kombu.transport.redis.Channel (redis_transport.py)
  QoS, do_restore                      our QoS; held tasks are not handed back when a channel closes
  connection (attribute)               kept after close: received tasks still ack through it
  close(), _qos                        pending acks are flushed before the channel closes
  conn_or_acquire(client), _create_client(), pool
                                       one client per connection pool instead of one per command
  _brpop_read(**options), _queue_cycle.items, _active_queues, _closing, _q_for_pri(queue, pri)
                                       after one BRPOP, the batch fetch takes what else waits
  basic_consume(queue, no_ack, callback, consumer_tag) (kombu.transport.virtual.Channel)
                                       queues consumed without acks (control replies) are not batch-fetched
  connection._deliver(message, queue)  (kombu.transport.virtual.Transport) hands a batch-fetched
                                       message to the consumer
  _put(queue, message, **kwargs) with _publish_batch, _get_message_priority(message, reverse)
                                       parks every queued task in the same transaction as its push
  _do_restore_message(payload, exchange, routing_key, pipe, leftmost)
                                       a handed-back message is parked again
  _purge(queue), _delete(queue, ...)   purging or deleting a queue forgets its parked messages
  global_keyprefix, unacked_key, unacked_index_key, visibility_timeout, priority_steps, sep,
  active_queues                        key names and settings the scripts need
kombu.transport.redis.PublishBatch
  add(name, *args)                     a batched publish parks as it pushes
kombu.transport.redis.Transport
  Channel, client (attribute)          kept after Celery detaches it, so acks reach Redis on reconnect
kombu message (kombu.transport.virtual.Message)
  _raw                                 the exact payload kombu stores as unacked
Data layout (layout.py, fetching.py, parking.py)
  queue lists "{queue}" and "{queue}\\x06\\x16{p}" for p in (3, 6, 9); hash "unacked" of
  tag -> [payload, exchange, routing_key]; sorted set "unacked_index" of tag -> delivery time;
  payload JSON with properties.delivery_tag and properties.delivery_info.{exchange, routing_key}
kombu.Connection.resolve_aliases (agent2389/celery_app.py)
                                       our transport's URL reads redis://, as Flower's broker view needs
Celery (outside this package)
  celery.apps.worker.safe_say          workers/main.py: Celery's terminal notices become log lines
  celery.worker.state.active_requests, reserved_requests
                                       workers/leases.py, heartbeat.py: the tasks whose leases a worker
                                       renews (and hands back at its shutdown deadline)
  celery.worker.control.revoke(state, task_id, terminate, signal, **kwargs), nok(value)
                                       workers/control.py: our revoke wraps Celery's, registered under
                                       the built-in name (as are pool_grow and pool_shrink)
  app.amqp.send_task_message(..., event_dispatcher=...), reached through send_task's options
                                       bridge/sent_events.py: a batch's task-sent events are collected
                                       and published as one task.multi message
  EventDispatcher hostname, pid, clock, exchange, serializer, headers, delivery_mode
                                       bridge/sent_events.py: each event made and sent as Celery's
                                       dispatcher makes and sends it
"""
