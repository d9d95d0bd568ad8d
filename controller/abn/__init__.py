"""A/B/n for the controller: which version a user gets, and the metrics frontends write back.

:mod:`.assignment` (weighted rendezvous hashing with a stable hash), :mod:`.service` (the gRPC
``ABN`` service, wire-compatible with Iter8 v1.1, whose contract is ``abn.proto`` in this folder),
:mod:`.store` (the metric store contract) with its backends :mod:`.sqlite_store` and
:mod:`.redis_store`, :mod:`.store_url` (``--abn-store URL`` to a store: ``open_store``),
:mod:`.summary` (statistics, the dashboard and Prometheus documents) and :mod:`.runtime` (how
``controller serve --abn-port`` wires them). The client SDK is :mod:`kubectl_iter8.sdk`; the user
documentation is docs/abn.md.
"""
