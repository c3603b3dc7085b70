"""A test plugin on a payee: while holding, it answers lightningd's invoice_payment hook only when released, so an
incoming payment stays in flight (the payer sees it pending) — how a test catches a payer mid-payment."""
import threading

from pyln.client import Plugin

plugin = Plugin()
state = {"hold": False, "held": []}
lock = threading.Lock()


@plugin.async_hook("invoice_payment")
def on_invoice_payment(payment, plugin, request, **kwargs):
    with lock:
        if not state["hold"]:
            request.set_result({"result": "continue"})
            return
        state["held"].append((payment, request))


@plugin.method("hold-invoices")
def hold_invoices(plugin, hold=True):
    """Hold incoming invoice payments (hold=true) or release every held one (hold=false)."""
    with lock:
        state["hold"] = bool(hold)
        released = [] if hold else state["held"]
        if not hold:
            state["held"] = []
    for _, request in released:
        request.set_result({"result": "continue"})
    return {"hold": state["hold"], "released": len(released), "held": len(state["held"])}


@plugin.method("held-invoices")
def held_invoices(plugin):
    """Payments waiting for release."""
    with lock:
        return {"held": [p for p, _ in state["held"]]}


plugin.run()
