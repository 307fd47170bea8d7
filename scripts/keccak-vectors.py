#!/usr/bin/env python3
"""Prints the Keccak-256 expectations hard-coded in Tests/EthereumTests/Keccak256Tests.swift.

Run after `pip install pycryptodome`; its Keccak is independent of the Swift code under test.
The message definitions here must match `patternMessage` and the literals in those tests.
"""
from Crypto.Hash import keccak


def digest(data: bytes) -> str:
    return keccak.new(digest_bits=256, data=data).hexdigest()


def pattern(length: int) -> bytes:
    return bytes(i % 251 for i in range(length))


print("200 x 0xa3:", digest(b"\xa3" * 200))
for length in (135, 136, 137, 271, 272, 1_048_577):
    print(f"pattern({length}):", digest(pattern(length)))
