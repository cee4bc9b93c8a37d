"""Opens COUNT TCP connections to 127.0.0.1:PORT and holds them, idle, until
killed. Prints "connected N failed M" once every attempt is done (2 s connect
deadline each). Used by compare.py's idle and memory sections.

    python3 hold.py PORT COUNT
"""

import resource
import socket
import sys
import time


def main() -> None:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 100), hard))
    held, failed = [], 0
    for _ in range(count):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            failed += 1
    print(f"connected {len(held)} failed {failed}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
