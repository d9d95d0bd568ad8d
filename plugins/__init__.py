"""Built-in route plugins (Istio, Gateway API, KServe ModelMesh, templates) for the traffic controller.

Empty until the traffic controller lands; routers register through ``iter8_register_routers``.
"""
