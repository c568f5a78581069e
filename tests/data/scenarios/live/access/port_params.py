"""virNetworkPortSetParameters on a connection to URI, as libvirt-python
calls it (virsh has no command for it).

    /usr/bin/python3 port_params.py URI NETWORK PORT-UUID [ro]

With `ro` the connection is opened with openReadOnly, else with open.
Prints `ok` or the error message. libvirt-python reads the port's
parameters first to learn their types, so the port needs a bandwidth.
"""

import sys

import libvirt

uri, network, port = sys.argv[1:4]
libvirt.registerErrorHandler(lambda ctx, err: None, None)
conn = libvirt.openReadOnly(uri) if sys.argv[4:] == ["ro"] else libvirt.open(uri)
try:
    p = conn.networkLookupByName(network).portLookupByUUIDString(port)
    p.setParameters({libvirt.VIR_NETWORK_PORT_BANDWIDTH_IN_AVERAGE: 1000})
    print("ok")
except libvirt.libvirtError as e:
    print(e.get_error_message())
except Exception as e:
    print("%s: %s" % (type(e).__name__, e))
