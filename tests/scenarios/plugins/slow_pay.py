#!/usr/bin/env python3
"""A test plugin that holds every ``pay``/``xpay`` command for a while before lightningd runs it (through the
``rpc_command`` hook), so a caller can be killed while its payment is still to come."""
import threading
import time

from pyln.client import Plugin

plugin = Plugin(dynamic=True)
plugin.add_option("slow-pay-seconds", "15", "How long each pay/xpay command is held", opt_type="string")
HELD = ("pay", "xpay")


def on_rpc_command(plugin, rpc_command, request, **kwargs):
    if rpc_command.get("method") not in HELD:
        request.set_result({"result": "continue"})
        return
    delay = float(plugin.get_option("slow-pay-seconds"))
    with open("slow_pay.log", "a") as f:
        f.write(f"{time.time():.3f} held {rpc_command.get('method')} {rpc_command.get('id')}\n")

    def release():
        time.sleep(delay)
        with open("slow_pay.log", "a") as f:
            f.write(f"{time.time():.3f} released {rpc_command.get('id')}\n")
        request.set_result({"result": "continue"})

    threading.Thread(target=release, daemon=True).start()


plugin.add_hook("rpc_command", on_rpc_command, background=True)
plugin.run()
