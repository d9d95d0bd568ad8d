"""A/B/n for the controller: which version a user gets, and the metrics frontends write back.

:mod:`.assignment` (weighted rendezvous hashing with a stable hash), :mod:`.store` (the SQLite
metric store), :mod:`.service` (the gRPC ``ABN`` service, wire-compatible with Iter8 v1.1, whose
contract is ``abn.proto`` in this folder). The client SDK is :mod:`kubectl_iter8.sdk`.
"""
