"""Every Redis key the service writes, in one place (after arq's constants module).

A user's keys share the hash tag ``{<user_id>}`` so they land on one Redis Cluster slot and one
script can touch them atomically.
"""

PREFIX = "ed"


def state(user_id: str) -> str:
    """Hash: v (version), h, c (float32 bytes), meta (JSON: detector, distributions, counts)."""
    return f"{PREFIX}:{{{user_id}}}:state"


def timeline(user_id: str) -> str:
    """List of JSON post results, oldest first, capped."""
    return f"{PREFIX}:{{{user_id}}}:timeline"


def post(user_id: str, post_id: str) -> str:
    """String: the first result for this post id (idempotency record), with a TTL."""
    return f"{PREFIX}:{{{user_id}}}:post:{post_id}"


def post_index(user_id: str) -> str:
    """Sorted set: post ids scored by the expiry of their idempotency record (so DELETE finds them)."""
    return f"{PREFIX}:{{{user_id}}}:posts"
