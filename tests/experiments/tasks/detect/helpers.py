"""Shared by the task=detect tests: a tiny detection config, and a guard that blocks (and records) any
connection to a non-local host."""
import contextlib
import socket
import textwrap

TINY = ("task=detect", "logger=none", "task.epochs=1", "task.imgsz=64", "task.batch=8",
        "task.val_batch=8", "data.train_size=24", "data.val_size=12", "data.image_size=64", "data.objects=[1,3]",
        "data.scale=[0.25,0.6]")
S050 = "model.variant=s050"

# Run in a fresh interpreter before anything else: any connection to a non-local host fails and is reported.
NO_NETWORK = textwrap.dedent("""
    import socket
    ATTEMPTS = []
    _connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
    def _local(host):
        return host in (None, "", "localhost", "127.0.0.1", "::1")
    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None) or _local(address[0]):
            return _connect(self, address)
        ATTEMPTS.append(str(address))
        raise OSError("network blocked by the test")
    def getaddrinfo(host, *args, **kwargs):
        if _local(host):
            return _getaddrinfo(host, *args, **kwargs)
        ATTEMPTS.append(str(host))
        raise socket.gaierror("network blocked by the test")
    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
""")


@contextlib.contextmanager
def no_network():
    """Block (and record) connections to non-local hosts in this process."""
    scope = {}
    exec(NO_NETWORK, scope)
    try:
        yield scope["ATTEMPTS"]
    finally:
        socket.socket.connect, socket.getaddrinfo = scope["_connect"], scope["_getaddrinfo"]
