"""Opens and closes a position through the gates: python3 clients/python/examples/open_close.py --symbol BTCUSDT --qty 0.002
(REDIS_URL and P3_KEY_EXIT_BRAIN name the stack). Exit 0 only when both plans EXECUTED."""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from p3client import P3Client  # noqa: E402

a = argparse.ArgumentParser()
a.add_argument("--symbol", default="BTCUSDT")
a.add_argument("--qty", default="0.002")
args = a.parse_args()
client = P3Client.from_env()


def show(name, r):
    print(name, r["status"], "%s @ %s" % (r["filled_qty"], r["avg_price"]) if r["status"] == "EXECUTED" else "%s %s" % (r["reason"], r["detail"]), flush=True)


opened = client.submit(args.symbol, "OPEN", side="BUY", qty=args.qty)
show("open ", opened)
closed = client.submit(args.symbol, "FULL_CLOSE")
show("close", closed)
client.close()
sys.exit(0 if opened["status"] == "EXECUTED" and closed["status"] == "EXECUTED" else 1)
