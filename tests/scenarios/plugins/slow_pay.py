#!/usr/bin/env python3
"""A test plugin that holds every ``pay``/``xpay`` command before lightningd runs it (through the ``rpc_command``
hook), for ``slow-pay-seconds`` or until ``slow-pay-release``, so a caller can be killed while its payment is
still to come."""
import threading
import time

from pyln.client import Plugin

plugin = Plugin(dynamic=True)
plugin.add_option("slow-pay-seconds", "3600", "How long each pay/xpay command is held at most", opt_type="string")
HELD = ("pay", "xpay")
held: list = []
lock = threading.Lock()


def log(line: str) -> None:
    with open("slow_pay.log", "a") as f:
        f.write(f"{time.time():.3f} {line}\n")


def release(request, why: str) -> None:
    with lock:
        if request not in held:
            return
        held.remove(request)
    log(f"released ({why})")
    request.set_result({"result": "continue"})


def on_rpc_command(plugin, rpc_command, request, **kwargs):
    if rpc_command.get("method") not in HELD:
        request.set_result({"result": "continue"})
        return
    log(f"held {rpc_command.get('method')} {rpc_command.get('id')}")
    with lock:
        held.append(request)
    timer = threading.Timer(float(plugin.get_option("slow-pay-seconds")), release, (request, "timer"))
    timer.daemon = True
    timer.start()


@plugin.method("slow-pay-held")
def slow_pay_held(plugin):
    """How many pay/xpay commands are held now."""
    with lock:
        return {"held": len(held)}


@plugin.method("slow-pay-release")
def slow_pay_release(plugin):
    """Let every held pay/xpay command run now."""
    with lock:
        now = list(held)
    for request in now:
        release(request, "asked")
    return {"released": len(now)}


plugin.add_hook("rpc_command", on_rpc_command, background=True)
plugin.run()
