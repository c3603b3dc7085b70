"""The pipeline every capability uses: the shared ``context`` (roster, signer, errors 2001-2003), ``ingress``
(authenticate, rate-limit and dispatch inbound messages), the durable ``outbox``, the ``transport`` (custommsg or
cl-hive-comms), best-effort ``fanout``, and ``formats`` (the signing string of every wire message)."""
from .context import Context
from .ingress import Ingress
from .outbox import Outbox
from .transport import Transport

__all__ = ["Context", "Ingress", "Outbox", "Transport"]
