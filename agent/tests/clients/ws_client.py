"""A WebSocket stream client for the agent's tests, on PyPI's `websockets`.

    python ws_client.py URL PROTOCOL SPEC_JSON

SPEC: {"stdin": "...", "waitFor": "text", "delayMs": N, "resize": [{"Width":..,"Height":..}],
       "closeStdin": bool, "exitAfter": "text"}  (exec/attach; exitAfter: leave
       once stdout has it), or {"steps": [...]} (a session typed step by step:
       {"send"}, {"resize"}, {"waitFor"} holds the next steps until stdout has
       the text, {"sleepMs"}, {"closeStdin"}, {"leave"} detaches),
       or {"portforward": true, "request": "..."}.
Prints one JSON line: {"protocol", "stdout", "stderr", "error", "data", "closed"}.
"""
import base64
import json
import sys
import time

from websockets.sync.client import connect

url, protocol, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
b64 = "base64" in protocol
out = {"protocol": None, "stdout": "", "stderr": "", "error": "", "data": "", "closed": [], "first": None}


def frame(ch, data):
    if b64:
        return chr(ord("0") + ch) + base64.b64encode(data).decode()
    return bytes([ch]) + data


def unframe(msg):
    if b64:
        return ord(msg[0]) - ord("0"), base64.b64decode(msg[1:])
    return msg[0], msg[1:]


names = {1: "stdout", 2: "stderr", 3: "error"}
with connect(url, subprotocols=[protocol], open_timeout=10, max_size=None) as ws:
    out["protocol"] = ws.subprotocol
    if spec.get("portforward"):
        # The server first names the port on the data and the error channel.
        ports = {}
        ws.send(frame(0, spec["request"].encode()))
        try:
            while True:
                ch, data = unframe(ws.recv(timeout=20))
                if ch not in ports:
                    ports[ch] = int.from_bytes(data[:2], "little")
                    data = data[2:]
                key = "data" if ch % 2 == 0 else "error"
                out[key] += data.decode(errors="replace")
        except Exception:
            pass
        out["ports"] = ports
    else:
        fed = "waitFor" not in spec and "steps" not in spec
        steps = list(spec.get("steps", []))

        def step():
            """Runs the steps that can run now; True once a step says leave."""
            while steps:
                s = steps[0]
                if "waitFor" in s:
                    if s["waitFor"] not in out["stdout"]:
                        return False
                    steps.pop(0)
                    continue
                steps.pop(0)
                if "send" in s:
                    ws.send(frame(0, s["send"].encode()))
                if "resize" in s:
                    ws.send(frame(4, json.dumps(s["resize"]).encode()))
                if s.get("closeStdin"):
                    ws.send(bytes([255, 0]))
                if s.get("sleepMs"):
                    time.sleep(s["sleepMs"] / 1000)
                if s.get("leave"):
                    return True
            return False

        def feed():
            for s in spec.get("resize", []):
                ws.send(frame(4, json.dumps(s).encode()))
            # As a person would: type once the terminal is up (runc applies the
            # first size right after it starts the process).
            time.sleep(spec.get("delayMs", 0) / 1000)
            if "stdin" in spec:
                ws.send(frame(0, spec["stdin"].encode()))
                if spec.get("closeStdin"):
                    ws.send(bytes([255, 0]))

        if fed:
            feed()
        if steps:
            time.sleep(0.2)
            if step():
                out["left"] = True
                steps = None
        try:
            while steps is not None:
                ch, data = unframe(ws.recv(timeout=20))
                if out["first"] is None:
                    out["first"] = [ch, len(data)]
                if ch == 255:
                    out["closed"].append(data[0])
                    continue
                out[names.get(ch, "other")] = out.get(names.get(ch, "other"), "") + data.decode(errors="replace")
                if steps and step():
                    out["left"] = True
                    break
                if not fed and "waitFor" in spec and spec["waitFor"] in out["stdout"]:
                    fed = True
                    feed()
                if "exitAfter" in spec and spec["exitAfter"] in out["stdout"]:
                    out["left"] = True
                    break
        except Exception:
            pass
print(json.dumps(out))
