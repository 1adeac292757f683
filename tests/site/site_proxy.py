"""A forwarding TCP proxy run as its own process by the site tests: it stands between a site
worker and the live server, appends every byte the worker sends to a file (the recording
proxy), and is killed to make Mica unreachable, then started again on the same port.

    python tests/site/site_proxy.py LISTEN_PORT TARGET_PORT RECORD_FILE
"""

import socket
import sys
import threading


def pump(source, target, record=None):
    try:
        while data := source.recv(65536):
            if record:
                with open(record, "ab") as fh:
                    fh.write(data)
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listen_port, target_port, record):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    print("listening", flush=True)
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=pump, args=(client, upstream, record), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
