"""Signed, durable webhooks (Standard Webhooks 1.0): subscriptions, signing, the outbox dispatcher.

    subscriptions.py  the subscription records (CRUD) in Redis
    urls.py           which receiver URLs are allowed (SSRF guard)
    signing.py        secrets and the ``v1,<base64 HMAC-SHA256>`` signature
    events.py         a delivery's body, and the webhook.test event
    payloads.py       what a receiver is sent, for the OpenAPI `webhooks` section
    retry.py          the retry policy: classify an answer, the next delay, Retry-After
    deliveries.py     delivery records, the due set, atomic claim / record / replay scripts
    dispatcher.py     the task in every replica: outbox consumer group -> signed POSTs -> retries
"""
