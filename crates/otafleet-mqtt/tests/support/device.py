"""One MQTT device for the tests: a paho client that connects the way the ESP Admin SDK does
(client id = user name = its id, last will retained on device/<id>/report/status), prints every
event as a JSON line on stdout, and does what each JSON line on stdin says:
{"sub": topic} | {"pub": topic, "payload": text, "retain": bool, "qos": n}. Like the SDK, it
subscribes again and says "connected" again after every reconnect."""
import json
import sys
import threading

import paho.mqtt.client as mqtt

host, port, dev_id, user, password = sys.argv[1:6]
cafile = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else None
will_topic = sys.argv[7] if len(sys.argv) > 7 and sys.argv[7] else f"device/{dev_id}/report/status"

out = threading.Lock()


def emit(obj):
    with out:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


c = mqtt.Client(client_id=dev_id, clean_session=True, protocol=mqtt.MQTTv311)
c.username_pw_set(user, password)
if cafile:
    c.tls_set(ca_certs=cafile)
c.will_set(will_topic, json.dumps({"status": "disconnected"}), qos=1, retain=True)
subscribed = []  # re-subscribed after a reconnect, as the SDK does at every connect
status = {}  # the "connected" status, said again after a reconnect


def on_connect(c, u, flags, rc):
    # Said last: the test sends its first command once it reads the CONNACK, and a topic it
    # subscribes to then must not also be picked up by this loop (two SUBACKs for one SUBSCRIBE).
    if rc == 0:
        for t in list(subscribed):
            c.subscribe(t, qos=1)
        if status:
            c.publish(status["topic"], status["payload"], qos=1, retain=True)
    emit({"event": "connack", "rc": rc})


c.on_connect = on_connect
c.reconnect_delay_set(min_delay=1, max_delay=2)
c.on_subscribe = lambda c, u, mid, granted: emit({"event": "suback", "granted": list(granted)})
c.on_message = lambda c, u, m: emit(
    {"event": "message", "topic": m.topic, "payload": m.payload.decode(errors="replace"), "retain": bool(m.retain)}
)
c.on_disconnect = lambda c, u, rc: emit({"event": "disconnect", "rc": rc})
try:
    c.connect(host, int(port), keepalive=30)
except Exception as e:  # refused TLS, closed port: say so and stop
    emit({"event": "error", "error": str(e)})
    sys.exit(1)
c.loop_start()
for line in sys.stdin:
    cmd = json.loads(line)
    if "sub" in cmd:
        subscribed.append(cmd["sub"])
        c.subscribe(cmd["sub"], qos=1)
    elif "pub" in cmd:
        if cmd["pub"].endswith("/report/status") and "disconnected" not in cmd.get("payload", ""):
            status.update(topic=cmd["pub"], payload=cmd.get("payload", ""))
        info = c.publish(cmd["pub"], cmd.get("payload", ""), qos=cmd.get("qos", 1), retain=cmd.get("retain", False))
        info.wait_for_publish()
        emit({"event": "published", "topic": cmd["pub"]})
c.loop_stop()
