#!/usr/bin/env python3
"""A local Ethereum JSON-RPC node for TelePay's tests: py-evm (through eth-tester) behind HTTP.

eth-tester is a real EVM but not a node: it has no wire-format JSON-RPC, no mempool and its own error
texts. This script adds what TelePay's client and hot-wallet sender need to be tested as they would
run against geth:

* JSON-RPC 2.0 over HTTP on 127.0.0.1 only, on an ephemeral port printed as the first line of
  standard output (`listening http://127.0.0.1:PORT chain_id=N`);
* quantities and data as 0x-hex, camelCase keys, `null` for unknown or pending receipts;
* geth's error texts with code -32000 (`nonce too low: next nonce X, tx nonce Y`, `already known`,
  `replacement transaction underpriced`, `insufficient funds for gas * price + value: ...`, ...), and
  code 3 with the revert data for reverted calls;
* a small pending pool: a transaction is validated as geth's pool would, then either mined at once
  (automine, the default) or held until a test mines it, so replacement and "stuck" paths can be
  tested. Replacing a pooled transaction needs both fee fields raised by 10 %, geth's default bump.

Test controls: `evm_mine` (mines pooled transactions of senders not held, or one empty block),
`evm_setAutomine [bool]`, `evm_snapshot`, `evm_revert [id]`,
`test_holdSender [address, bool]` (pool one sender's transactions until released or mined),
`test_mineSender [address]`, `test_fund [address, wei]` (from the prefunded account of key 1),
`test_deployToken [name, symbol, decimals, supply, holder]` (deploys TestToken.bin),
`test_faucetCall [to, data]` (a transaction from that account, mined at once) and
`test_sleep [seconds]` (answers late, for client timeout tests).

Usage: eth_test_node.py [--parent-pid PID]   (exits when that process is gone)
       eth_test_node.py --check-deps         (exit 0 when the pinned packages are installed)
"""

import argparse
import json
import os
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
GWEI = 10**9
PRICE_BUMP_PERCENT = 10
ERROR_SELECTOR = bytes.fromhex("08c379a0")


def pinned_requirements():
    pins = []
    with open(REQUIREMENTS) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                pins.append((name.split("[")[0], version))
    return pins


def missing_requirements():
    from importlib import metadata

    problems = []
    for name, version in pinned_requirements():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}=={version} is not installed")
            continue
        if installed != version:
            problems.append(f"{name} is {installed}, expected {version}")
    return problems


class RPCError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def geth_error(message):
    return RPCError(-32000, message)


def quantity(value, name="quantity"):
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.startswith("0x") and len(value) > 2:
        return int(value, 16)
    raise RPCError(-32602, f"invalid argument: {name} {value!r} is not a hex quantity")


def data_bytes(value, name="data"):
    if isinstance(value, str) and value.startswith("0x") and len(value) % 2 == 0:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise RPCError(-32602, f"invalid argument: {name} {value!r} is not 0x-prefixed hex data")


def camel(key):
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def to_wire(value):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {camel(key): to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    return str(value)


def allow_calls_without_gas_money():
    """geth runs eth_call without charging the sender for gas; py-evm insists the sender could pay
    gas × price even for a call. Credit that amount inside the call's own snapshot, which is reverted
    right after, so calls from empty accounts behave as on geth."""
    import eth_tester.backends.pyevm.main as pyevm

    def execute_and_revert(chain, transaction, block_number="latest"):
        state = pyevm._get_vm_for_block_number(chain, block_number).state
        snapshot = state.snapshot()
        price = getattr(transaction, "max_fee_per_gas", None) or getattr(transaction, "gas_price", 0)
        state.delta_balance(transaction.sender, transaction.gas * price)
        computation = state.apply_transaction(transaction)
        state.revert(snapshot)
        return computation

    pyevm._execute_and_revert_transaction = execute_and_revert


class PooledTransaction:
    def __init__(self, raw, tx_hash, sender, nonce, fee_cap, tip, gas, value, data, to, tx_type):
        self.raw = raw
        self.hash = tx_hash
        self.sender = sender
        self.nonce = nonce
        self.fee_cap = fee_cap
        self.tip = tip
        self.gas = gas
        self.value = value
        self.data = data
        self.to = to
        self.type = tx_type

    def as_rpc(self, chain_id):
        body = {
            "hash": self.hash, "nonce": hex(self.nonce), "from": self.sender,
            "to": self.to, "value": hex(self.value), "gas": hex(self.gas), "input": "0x" + self.data.hex(),
            "blockHash": None, "blockNumber": None, "transactionIndex": None,
            "type": hex(self.type), "chainId": hex(chain_id),
        }
        if self.type == 2:
            body["maxFeePerGas"] = hex(self.fee_cap)
            body["maxPriorityFeePerGas"] = hex(self.tip)
        else:
            body["gasPrice"] = hex(self.fee_cap)
        return body


class Node:
    def __init__(self):
        from eth_tester import EthereumTester, PyEVMBackend

        allow_calls_without_gas_money()
        self.tester = EthereumTester(PyEVMBackend())
        self.chain_id = self.tester.backend.chain.chain_id
        self.faucet = self.tester.get_accounts()[0]
        self.lock = threading.RLock()
        self.automine = True
        self.held = set()
        self.pool = {}

    # ---- helpers -------------------------------------------------------------------------------

    def checksum(self, address, name="address"):
        from eth_utils import is_address, to_checksum_address

        if not isinstance(address, str) or not is_address(address):
            raise RPCError(-32602, f"invalid argument: {name} {address!r} is not an address")
        return to_checksum_address(address)

    def block_id(self, tag):
        if tag is None:
            return "latest"
        if tag in ("latest", "pending", "earliest", "safe", "finalized"):
            return tag
        return quantity(tag, "block number")

    def latest_number(self):
        return self.tester.get_block_by_number("latest")["number"]

    def chain_nonce(self, address):
        return self.tester.get_nonce(address, "latest")

    def pending_nonce(self, address):
        nonce = self.chain_nonce(address)
        while (address, nonce) in self.pool:
            nonce += 1
        return nonce

    def call_object(self, params):
        if not params or not isinstance(params[0], dict):
            raise RPCError(-32602, "invalid argument 0: expected a call object")
        call = params[0]
        tx = {"from": self.checksum(call.get("from", "0x" + "00" * 20), "from")}
        if call.get("to"):
            tx["to"] = self.checksum(call["to"], "to")
        if "value" in call:
            tx["value"] = quantity(call["value"], "value")
        if "gas" in call:
            tx["gas"] = quantity(call["gas"], "gas")
        payload = call.get("input", call.get("data"))
        if payload is not None:
            tx["data"] = "0x" + data_bytes(payload).hex()
        return tx, self.block_id(params[1] if len(params) > 1 else None)

    def revert_error(self, failure):
        detail = failure.args[0] if failure.args else None
        reason = None
        payload = b""
        if isinstance(detail, str):
            reason = detail or None
        else:
            inner = getattr(detail, "args", ())
            if inner and isinstance(inner[0], (bytes, bytearray)):
                payload = bytes(inner[0])
            elif isinstance(detail, (bytes, bytearray)):
                payload = bytes(detail)
        if reason is not None:
            from eth_abi import encode

            payload = ERROR_SELECTOR + encode(["string"], [reason])
        elif payload[:4] == ERROR_SELECTOR:
            from eth_abi import decode

            try:
                reason = decode(["string"], payload[4:])[0]
            except Exception:
                reason = None
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        return RPCError(3, message, "0x" + payload.hex())

    def decode_raw(self, raw):
        from eth_account import Account
        from eth_utils import keccak, to_checksum_address

        if not raw:
            raise geth_error("typed transaction too short")
        try:
            if raw[0] <= 0x7F:
                from eth_account.typed_transactions import TypedTransaction

                if raw[0] not in (1, 2):
                    raise geth_error("transaction type not supported")
                from hexbytes import HexBytes

                fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
                chain_id = fields["chainId"]
                if raw[0] == 2:
                    fee_cap, tip = fields["maxFeePerGas"], fields["maxPriorityFeePerGas"]
                else:
                    fee_cap = tip = fields["gasPrice"]
                nonce, gas, value = fields["nonce"], fields["gas"], fields["value"]
                data = bytes(fields["data"])
                to = bytes(fields["to"]) if fields.get("to") else b""
                tx_type = raw[0]
            else:
                import rlp

                items = rlp.decode(raw)
                if len(items) != 9:
                    raise geth_error("rlp: input list has too few elements for types.LegacyTx")
                number = lambda item: int.from_bytes(item, "big")
                nonce, fee_cap, gas = number(items[0]), number(items[1]), number(items[2])
                tip = fee_cap
                to, value, data, v = items[3], number(items[4]), items[5], number(items[6])
                if v in (27, 28):
                    raise geth_error("only replay-protected (EIP-155) transactions allowed over RPC")
                chain_id = (v - 35) // 2
                tx_type = 0
            sender = Account.recover_transaction(raw)
        except RPCError:
            raise
        except Exception as failure:
            raise geth_error(f"rlp: {failure}")
        return PooledTransaction(
            raw=raw, tx_hash="0x" + keccak(raw).hex(), sender=sender, nonce=nonce, fee_cap=fee_cap,
            tip=tip, gas=gas, value=value, data=data,
            to=to_checksum_address(to) if to else None, tx_type=tx_type,
        ), chain_id

    def intrinsic_gas(self, tx):
        zero = tx.data.count(0)
        gas = 21000 + 4 * zero + 16 * (len(tx.data) - zero)
        if tx.to is None:
            gas += 32000 + 2 * ((len(tx.data) + 31) // 32)
        return gas

    def flush(self, sender):
        """Mines the sender's pooled transactions that are next in nonce order, one block each."""
        mined = 0
        while True:
            nonce = self.chain_nonce(sender)
            tx = self.pool.get((sender, nonce))
            if tx is None:
                return mined
            try:
                self.tester.send_raw_transaction("0x" + tx.raw.hex())
            except Exception as failure:
                # geth keeps such a transaction pending (e.g. its fee cap is now below the base fee);
                # so do we, which is what a stuck transaction looks like.
                print(f"pooled {tx.hash} not mined: {failure}", file=sys.stderr, flush=True)
                return mined
            del self.pool[(sender, nonce)]
            mined += 1

    def mine_unheld(self):
        mined = 0
        for sender in sorted({sender for sender, _ in self.pool} - self.held):
            mined += self.flush(sender)
        return mined

    # ---- standard methods ----------------------------------------------------------------------

    def eth_chainId(self, params):
        return hex(self.chain_id)

    def net_version(self, params):
        return str(self.chain_id)

    def web3_clientVersion(self, params):
        return "eth-tester-node/py-evm (TelePay tests)"

    def eth_blockNumber(self, params):
        return hex(self.latest_number())

    def eth_getBalance(self, params):
        address = self.checksum(params[0] if params else None)
        return hex(self.tester.get_balance(address, self.block_id(params[1] if len(params) > 1 else None)))

    def eth_getCode(self, params):
        address = self.checksum(params[0] if params else None)
        return to_wire(self.tester.get_code(address, self.block_id(params[1] if len(params) > 1 else None)))

    def eth_getTransactionCount(self, params):
        address = self.checksum(params[0] if params else None)
        tag = self.block_id(params[1] if len(params) > 1 else None)
        if tag == "pending":
            return hex(self.pending_nonce(address))
        return hex(self.tester.get_nonce(address, tag))

    def eth_gasPrice(self, params):
        return hex(self.tester.get_block_by_number("pending")["base_fee_per_gas"] + GWEI)

    def eth_maxPriorityFeePerGas(self, params):
        return hex(GWEI)

    def next_base_fee(self, block):
        base, used, limit = block["base_fee_per_gas"], block["gas_used"], block["gas_limit"]
        target = limit // 2
        if used == target:
            return base
        if used > target:
            return base + max(base * (used - target) // target // 8, 1)
        return base - base * (target - used) // target // 8

    def eth_feeHistory(self, params):
        if len(params) < 2:
            raise RPCError(-32602, "missing value for required argument 1")
        count = quantity(params[0], "blockCount")
        newest_tag = self.block_id(params[1])
        newest = self.latest_number() if isinstance(newest_tag, str) else newest_tag
        percentiles = params[2] if len(params) > 2 and params[2] else []
        if newest > self.latest_number():
            raise geth_error(f"requested block {newest} is in the future")
        count = max(0, min(count, newest + 1, 1024))
        oldest = newest - count + 1
        base_fees, ratios, rewards = [], [], []
        block = None
        for number in range(oldest, newest + 1):
            block = self.tester.get_block_by_number(number, True)
            base_fees.append(hex(block["base_fee_per_gas"]))
            ratios.append(block["gas_used"] / block["gas_limit"])
            if percentiles:
                tips = sorted(
                    min(tx.get("max_priority_fee_per_gas", tx.get("gas_price", 0)),
                        tx.get("max_fee_per_gas", tx.get("gas_price", 0)) - block["base_fee_per_gas"])
                    for tx in block["transactions"]
                )
                rewards.append([
                    hex(tips[min(int(len(tips) * p / 100), len(tips) - 1)] if tips else 0) for p in percentiles
                ])
        if block is not None:
            base_fees.append(hex(self.next_base_fee(block)))
        result = {"oldestBlock": hex(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios}
        if percentiles:
            result["reward"] = rewards
        return result

    def eth_estimateGas(self, params):
        from eth_tester.exceptions import TransactionFailed

        tx, tag = self.call_object(params)
        if "value" in tx and tx["value"] > self.tester.get_balance(tx["from"], "latest"):
            raise geth_error("insufficient funds for transfer")
        # Like geth, estimate at a gas price of zero, so only the value must be covered.
        tx.setdefault("max_fee_per_gas", 0)
        tx.setdefault("max_priority_fee_per_gas", 0)
        try:
            return hex(self.tester.estimate_gas(tx, tag))
        except TransactionFailed as failure:
            raise self.revert_error(failure)

    def eth_call(self, params):
        from eth_tester.exceptions import TransactionFailed

        tx, tag = self.call_object(params)
        try:
            return to_wire(self.tester.call(tx, tag))
        except TransactionFailed as failure:
            raise self.revert_error(failure)

    def eth_sendRawTransaction(self, params):
        raw = data_bytes(params[0] if params else None, "raw transaction")
        tx, chain_id = self.decode_raw(raw)
        if chain_id != self.chain_id:
            raise geth_error("invalid sender")
        for pooled in self.pool.values():
            if pooled.hash == tx.hash:
                raise geth_error("already known")
        next_nonce = self.chain_nonce(tx.sender)
        if tx.nonce < next_nonce:
            raise geth_error(f"nonce too low: next nonce {next_nonce}, tx nonce {tx.nonce}")
        minimum = self.intrinsic_gas(tx)
        if tx.gas < minimum:
            raise geth_error(f"intrinsic gas too low: gas {tx.gas}, minimum needed {minimum}")
        block = self.tester.get_block_by_number("latest")
        if tx.gas > block["gas_limit"]:
            raise geth_error("exceeds block gas limit")
        if tx.tip > tx.fee_cap:
            raise geth_error(
                f"max priority fee per gas higher than max fee per gas: address {tx.sender}, "
                f"maxPriorityFeePerGas: {tx.tip}, maxFeePerGas: {tx.fee_cap}"
            )
        base_fee = self.tester.get_block_by_number("pending")["base_fee_per_gas"]
        if tx.fee_cap < base_fee:
            raise geth_error(
                f"max fee per gas less than block base fee: address {tx.sender}, "
                f"maxFeePerGas: {tx.fee_cap}, baseFee: {base_fee}"
            )
        balance = self.tester.get_balance(tx.sender, "latest")
        cost = tx.value + tx.gas * tx.fee_cap
        if balance < cost:
            raise geth_error(
                f"insufficient funds for gas * price + value: balance {balance}, tx cost {cost}, "
                f"overshot {cost - balance}"
            )
        previous = self.pool.get((tx.sender, tx.nonce))
        if previous is not None:
            fee_floor = previous.fee_cap * (100 + PRICE_BUMP_PERCENT) // 100
            tip_floor = previous.tip * (100 + PRICE_BUMP_PERCENT) // 100
            if (tx.fee_cap <= previous.fee_cap or tx.tip <= previous.tip
                    or tx.fee_cap < fee_floor or tx.tip < tip_floor):
                raise geth_error("replacement transaction underpriced")
        self.pool[(tx.sender, tx.nonce)] = tx
        if self.automine and tx.sender not in self.held:
            self.flush(tx.sender)
        return tx.hash

    def eth_getTransactionReceipt(self, params):
        from eth_tester.exceptions import TransactionNotFound

        tx_hash = "0x" + data_bytes(params[0] if params else None, "hash").hex()
        try:
            receipt = dict(self.tester.get_transaction_receipt(tx_hash))
        except TransactionNotFound:
            return None
        if receipt.get("block_number") is None:
            return None
        receipt.pop("state_root", None)
        return to_wire(receipt)

    def eth_getTransactionByHash(self, params):
        from eth_tester.exceptions import TransactionNotFound

        tx_hash = "0x" + data_bytes(params[0] if params else None, "hash").hex()
        for pooled in self.pool.values():
            if pooled.hash == tx_hash:
                return pooled.as_rpc(self.chain_id)
        try:
            tx = dict(self.tester.get_transaction_by_hash(tx_hash))
        except TransactionNotFound:
            return None
        tx["input"] = tx.pop("data", "0x")
        return to_wire(tx)

    def eth_getBlockByNumber(self, params):
        from eth_tester.exceptions import BlockNotFound

        tag = self.block_id(params[0] if params else None)
        full = bool(params[1]) if len(params) > 1 else False
        try:
            block = dict(self.tester.get_block_by_number(tag, full))
        except BlockNotFound:
            return None
        block["miner"] = block.pop("coinbase", None)
        return to_wire(block)

    # ---- test controls -------------------------------------------------------------------------

    def evm_mine(self, params):
        # Held senders are left alone: parallel tests share the node, and a test holding its
        # wallet decides itself when that wallet's transactions are mined.
        if self.mine_unheld() == 0:
            self.tester.mine_blocks(1)
        return hex(self.latest_number())

    def evm_setAutomine(self, params):
        self.automine = bool(params[0]) if params else True
        if self.automine:
            for sender in sorted({sender for sender, _ in self.pool} - self.held):
                self.flush(sender)
        return True

    def evm_snapshot(self, params):
        return hex(self.tester.take_snapshot())

    def evm_revert(self, params):
        self.tester.revert_to_snapshot(quantity(params[0] if params else None, "snapshot id"))
        self.pool.clear()
        return True

    def test_holdSender(self, params):
        sender = self.checksum(params[0] if params else None)
        if len(params) < 2 or bool(params[1]):
            self.held.add(sender)
        else:
            self.held.discard(sender)
            if self.automine:
                self.flush(sender)
        return True

    def test_mineSender(self, params):
        return hex(self.flush(self.checksum(params[0] if params else None)))

    def test_fund(self, params):
        address = self.checksum(params[0] if params else None)
        value = quantity(params[1] if len(params) > 1 else None, "value")
        return self.tester.send_transaction({
            "from": self.faucet, "to": address, "value": value, "gas": 21000,
            "max_fee_per_gas": 10 * GWEI, "max_priority_fee_per_gas": GWEI,
        })

    def test_faucetCall(self, params):
        to = self.checksum(params[0] if params else None, "to")
        data = data_bytes(params[1] if len(params) > 1 else None)
        tx_hash = self.tester.send_transaction({
            "from": self.faucet, "to": to, "data": "0x" + data.hex(), "gas": 1_000_000,
            "max_fee_per_gas": 10 * GWEI, "max_priority_fee_per_gas": GWEI,
        })
        return to_wire(dict(self.tester.get_transaction_receipt(tx_hash))["status"])

    def test_deployToken(self, params):
        from eth_abi import encode

        if len(params) != 5:
            raise RPCError(-32602, "expected [name, symbol, decimals, supply, holder]")
        name, symbol = str(params[0]), str(params[1])
        decimals = int(params[2])
        supply = quantity(params[3], "supply")
        holder = self.checksum(params[4], "holder")
        with open(os.path.join(HERE, "TestToken.bin")) as handle:
            code = bytes.fromhex(handle.read().strip().removeprefix("0x"))
        arguments = encode(["string", "string", "uint8", "uint256", "address"], [name, symbol, decimals, supply, holder])
        tx_hash = self.tester.send_transaction({
            "from": self.faucet, "data": "0x" + (code + arguments).hex(), "gas": 3_000_000,
            "max_fee_per_gas": 10 * GWEI, "max_priority_fee_per_gas": GWEI,
        })
        receipt = self.tester.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise geth_error("token deployment reverted")
        return receipt["contract_address"]

    # ---- dispatch ------------------------------------------------------------------------------

    def handle(self, request):
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
                raise RPCError(-32600, "invalid request")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise RPCError(-32602, "non-array args")
            method = request["method"]
            if method == "test_sleep":
                time.sleep(float(params[0]) if params else 1.0)
                return {"jsonrpc": "2.0", "id": request_id, "result": True}
            handler = getattr(self, method, None) if method.split("_")[0] in ("eth", "net", "web3", "evm", "test") else None
            if handler is None:
                raise RPCError(-32601, f"the method {method} does not exist/is not available")
            with self.lock:
                result = handler(params)
            return {"jsonrpc": "2.0", "id": request_id, "result": result}
        except RPCError as failure:
            error = {"code": failure.code, "message": failure.message}
            if failure.data is not None:
                error["data"] = failure.data
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        except Exception as failure:
            traceback.print_exc(file=sys.stderr)
            return {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32603, "message": str(failure)}}


def serve(node, parent_pid):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle's algorithm against the client's
        # delayed ACK every answer would wait about 40 ms.
        disable_nagle_algorithm = True

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                request = json.loads(body)
            except ValueError:
                response = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            else:
                if isinstance(request, list) and request:
                    response = [node.handle(item) for item in request]
                else:
                    response = node.handle(request)
            payload = json.dumps(response).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if parent_pid:
        def watch_parent():
            while True:
                time.sleep(0.5)
                if os.getppid() != parent_pid:
                    os._exit(0)
        threading.Thread(target=watch_parent, daemon=True).start()
    print(f"listening http://127.0.0.1:{server.server_address[1]} chain_id={node.chain_id}", flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description="Local Ethereum JSON-RPC node for TelePay's tests.")
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    parser.add_argument("--check-deps", action="store_true", help="exit 0 when the pinned packages are installed")
    arguments = parser.parse_args()
    problems = missing_requirements()
    if arguments.check_deps:
        for problem in problems:
            print(problem)
        sys.exit(1 if problems else 0)
    if problems:
        print("eth_test_node: the local EVM's Python packages are missing or not the pinned versions:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("run scripts/install-deps (or pip install -r Tests/EthereumNode/requirements.txt)", file=sys.stderr, flush=True)
        sys.exit(3)
    serve(Node(), arguments.parent_pid)


if __name__ == "__main__":
    main()
