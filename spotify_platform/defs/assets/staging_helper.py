"""A helper process of the staging step: stages the days it is sent, one at a time.

Run as `python -m spotify_platform.defs.assets.staging_helper` by `staging._Helper`. It reads
pickled requests on stdin (first the lake's settings and the pseudonym key, then one day per
request) and answers each with a pickled ("ok", stats) or ("error", exception) on stdout;
anything printed goes to stderr. A process of its own, rather than multiprocessing's spawn,
because spawn imports the parent's main script again, which breaks unguarded scripts.
"""

import pickle
import sys


def main() -> None:
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr

    from spotify_platform.defs.assets.staging import _land
    from spotify_platform.defs.resources.lake import LakeResource

    config, key = pickle.load(requests)
    lake = LakeResource(**config)
    while True:
        try:
            day = pickle.load(requests)
        except EOFError:
            return
        try:
            reply = pickle.dumps(("ok", _land(lake, key, day)))
        except Exception as exc:  # handed back to the step, which raises it
            try:
                reply = pickle.dumps(("error", exc))
            except Exception:
                reply = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        replies.write(reply)
        replies.flush()


if __name__ == "__main__":
    main()
