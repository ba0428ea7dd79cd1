"""The exchange: how every kind of work reaches a peer gateway.

Today it holds the one peer client (:mod:`gcx.gateway.exchange.peer_client`),
used by message delivery, bulk transfer, service calls, ping, recall
forwarding and read receipts. It will also hold the one outbox, the one
kind-agnostic worker and the registry of carriers (issue 15), so that a new
kind of exchange is a carrier registered here, not another pipeline.
"""
