"""What one sign-in's password check costs: the platform's argon2id settings against passlib's
default argon2 settings (64 MiB, 3 passes, 4 lanes), measured alternately in this process.

    python scripts/bench/bench_password_hash.py [--rounds 10] [--json]

Prints the median verify time of each and their ratio (platform ÷ passlib default). The ratio
is what to read on a shared machine; the absolute times move with its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from passlib.context import CryptContext

from backend.core.security import hash_password, verify_password

PASSWORD = "correct horse battery staple"  # noqa: S105 - a benchmark's own input


def _median_ms(check: object, rounds: int) -> float:
    assert callable(check)  # noqa: S101 - a benchmark's own setup
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert check()  # noqa: S101 - a wrong password check would make the figure meaningless
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()

    default_context = CryptContext(schemes=["argon2"])
    platform_hash = hash_password(PASSWORD)
    default_hash = default_context.hash(PASSWORD)
    platform_ms: list[float] = []
    default_ms: list[float] = []
    for _ in range(3):  # alternate, so a change of load touches both alike
        platform_ms.append(
            _median_ms(lambda: verify_password(PASSWORD, platform_hash), args.rounds)
        )
        default_ms.append(
            _median_ms(lambda: default_context.verify(PASSWORD, default_hash), args.rounds)
        )
    result = {
        "platform_settings": platform_hash.split("$")[3],
        "passlib_default_settings": default_hash.split("$")[3],
        "platform_verify_ms": round(statistics.median(platform_ms), 1),
        "passlib_default_verify_ms": round(statistics.median(default_ms), 1),
    }
    result["ratio"] = round(result["platform_verify_ms"] / result["passlib_default_verify_ms"], 3)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
