"""The Redis Cluster client the service builds (``app.connect_redis``): redis-py's, told of masters it
has not met.

redis-py learns the Cluster's nodes from ``CLUSTER SLOTS``, where a master that owns no slot yet (one
just added, its first slots still moving to it) does not appear. An ASK redirects a command to such a
master, and redis-py looked the address up, found nothing and fell into an AttributeError on None:
every read or write of a slot left half moved to a new master answered 503 for as long as it stayed
so (tests/test_cluster.py). A MOVED to an unknown node was already handled (``move_slot`` adds it).
"""

from __future__ import annotations

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.cluster import PRIMARY


class ClusterClient(RedisCluster):
    def get_node(self, host: str | None = None, port: int | None = None,
                 node_name: str | None = None) -> ClusterNode | None:
        """The node at ``host:port`` (or named ``node_name``); an address not met yet is a master added
        since the client last read the Cluster's layout (only a master takes slots, so only a master is
        redirected to): it is added, as redis-py's own ``move_slot`` adds one a MOVED names."""
        node = super().get_node(host, port, node_name)
        if node is None and host and port:
            nodes = self.nodes_manager
            node = ClusterNode(host, port, PRIMARY, **nodes.connection_kwargs)
            nodes.set_nodes(nodes.nodes_cache, {node.name: node})
        return node
