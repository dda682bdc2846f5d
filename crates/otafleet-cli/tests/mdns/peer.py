"""An independent mDNS peer for otafleet's LAN tests: python-zeroconf, not our own code.

    peer.py watch TYPE...      print one JSON line per resolved / removed service, until stdin closes
    peer.py advertise SPEC     register the services in SPEC (a JSON list of {type, name, host, ip,
                               port, txt}), print {"event": "registered"}; on the stdin line
                               "unregister" unregister them (goodbye packets) and print
                               {"event": "unregistered"}; exit when stdin closes
"""

import json
import socket
import sys
import threading

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf


def say(obj):
    print(json.dumps(obj), flush=True)


def txt(info):
    return {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()}


def watch(types):
    zc = Zeroconf(ip_version=IPVersion.V4Only)

    def changed(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Removed:
            say({"event": "removed", "type": service_type, "name": name})
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info is None:
            return
        say({"event": "resolved", "type": service_type, "name": name, "server": info.server,
             "port": info.port, "addresses": info.parsed_addresses(), "txt": txt(info)})

    ServiceBrowser(zc, types, handlers=[changed])
    sys.stdin.read()
    zc.close()


def advertise(spec):
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    infos = [ServiceInfo(s["type"], f'{s["name"]}.{s["type"]}', server=s["host"],
                         addresses=[socket.inet_aton(s["ip"])], port=s["port"], properties=s["txt"])
             for s in spec]
    for info in infos:
        zc.register_service(info)
    say({"event": "registered"})
    for line in sys.stdin:
        if line.strip() == "unregister":
            for info in infos:
                zc.unregister_service(info)
            say({"event": "unregistered"})
    zc.close()


if __name__ == "__main__":
    if sys.argv[1] == "watch":
        watch(sys.argv[2:])
    elif sys.argv[1] == "advertise":
        advertise(json.loads(sys.argv[2]))
    else:
        sys.exit(__doc__)
